"""The task tree's rules and its YAML: property tests over generated trees, and the status transitions."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from swarmd import store
from swarmd.errors import ValidationError
from swarmd.tasks import (
    TRANSITIONS,
    Attempt,
    Kind,
    Outcome,
    Result,
    Status,
    Task,
    TransitionError,
    Usage,
    parent_id,
    transition,
    validate_tree,
)

text = st.text(st.characters(codec="utf-8", exclude_categories=("Cs", "Cc")), max_size=40) | st.sampled_from(
    ["", "two\nlines\n", "trailing space \n", "  indented\nthen not", "'quoted'", "a: b", "- item", "null", "2.10"]
)
usage = st.builds(
    Usage,
    input_tokens=st.integers(0, 10**9),
    output_tokens=st.integers(0, 10**9),
    cached_tokens=st.integers(0, 10**9),
    cost_usd=st.none() | st.floats(0, 1000, allow_nan=False, allow_infinity=False),
)
result = st.builds(
    Result,
    summary=text,
    notes=st.lists(text, max_size=3),
    concerns=st.lists(text, max_size=2),
    follow_ups=st.lists(text, max_size=2),
    usage=st.none() | usage,
)
attempt = st.builds(
    Attempt,
    number=st.integers(1, 9),
    outcome=st.sampled_from(Outcome),
    reason=st.none() | text,
    seconds=st.none() | st.floats(0, 1e6, allow_nan=False),
)


@st.composite
def trees(draw: st.DrawFn) -> dict[str, Task]:
    """A valid tree: plan tasks with children numbered under them, `needs` only on earlier siblings."""
    tasks: dict[str, Task] = {}
    frontier: list[str | None] = [None]
    while frontier and len(tasks) < 25:
        parent = frontier.pop(0)
        for n in range(1, draw(st.integers(0 if parent else 1, 4)) + 1):
            task_id = f"{parent}.{n}" if parent else str(draw(st.sampled_from([n, n + 9])))
            if task_id in tasks:
                continue
            kind = draw(st.sampled_from(Kind)) if task_id.count(".") < 3 else Kind.WORK
            siblings = [t for t in tasks if parent_id(t) == parent]
            tasks[task_id] = Task(
                id=task_id,
                title=draw(text.filter(str.strip)),
                kind=kind,
                status=draw(st.sampled_from(Status)),
                parent=parent,
                needs=draw(st.lists(st.sampled_from(siblings), unique=True)) if siblings else [],
                description=draw(text),
                acceptance=draw(st.none() | text),
                attempts=draw(st.lists(attempt, max_size=3)),
                result=draw(st.none() | result),
            )
            if kind is Kind.PLAN:
                frontier.append(task_id)
    return tasks


@settings(max_examples=150, deadline=None)
@given(trees())
def test_valid_trees_round_trip_through_yaml_unchanged(tasks: dict[str, Task]) -> None:
    assert validate_tree(tasks, {}) == []
    for task in tasks.values():
        dumped = store.dump_task(task)
        loaded = store.parse_task(dumped, store.task_path(task.id))
        assert loaded == task
        assert store.dump_task(loaded) == dumped, "a second dump must not reformat the file"


BREAKS = {
    "kind": ("kind", "chore"),
    "status": ("status", "doing"),
    "id": ("id", "01"),
    "title": ("title", ""),
    "parent": ("parent", "1.x"),
    "needs": ("needs", "3"),
    "attempts": ("attempts", [{"number": 0, "outcome": "landed"}]),
    "result": ("result", {"summary": "s", "usage": {"input_tokens": -1}}),
}


@settings(max_examples=100, deadline=None)
@given(trees(), st.sampled_from(sorted(BREAKS)), st.data())
def test_invalid_task_files_are_refused_naming_the_field(
    tasks: dict[str, Task], broken: str, data: st.DataObject
) -> None:
    task = data.draw(st.sampled_from(sorted(tasks.values(), key=lambda t: t.id)))
    raw = task.model_dump(mode="json")
    field, value = BREAKS[broken]
    raw[field] = value
    source = store.task_path(task.id)
    with pytest.raises(ValidationError) as refused:
        store.parse_task(store.yamlio.dump(raw), source)
    assert all(problem.startswith(f"{source}: field `{field}") for problem in refused.value.problems)


@settings(max_examples=100, deadline=None)
@given(trees(), st.data())
def test_invalid_trees_are_refused_naming_the_task_and_field(tasks: dict[str, Task], data: st.DataObject) -> None:
    victim = data.draw(st.sampled_from(sorted(tasks)))
    how = data.draw(st.sampled_from(["missing need", "self need", "wrong parent", "loop"]))
    task = tasks[victim]
    if how == "missing need":
        tasks[victim] = task.model_copy(update={"needs": [*task.needs, "99"]})
        field = "`needs["
    elif how == "self need":
        tasks[victim] = task.model_copy(update={"needs": [victim]})
        field = "`needs[0]`"
    elif how == "wrong parent":
        tasks[victim] = task.model_copy(update={"parent": "98" if task.parent is None else None})
        field = "`parent`"
    else:
        other = data.draw(st.sampled_from(sorted(tasks)))
        if other == victim or other.startswith(victim + ".") or victim.startswith(other + "."):
            return
        tasks[victim] = task.model_copy(update={"needs": [other]})
        tasks[other] = tasks[other].model_copy(update={"needs": [victim]})
        field = "`needs`: the tasks form a loop"
    sources = {task_id: store.task_path(task_id) for task_id in tasks}
    problems = validate_tree(tasks, sources)
    # a loop is reported at the task that closes it, which the search order decides: either of the two
    named = [victim, other] if how == "loop" else [victim]
    assert any(p.startswith(f"{store.task_path(t)}: field {field}") for p in problems for t in named), problems


def test_an_ancestor_in_needs_is_refused() -> None:
    plan = Task(id="1", title="p", kind=Kind.PLAN, parent=None)
    child = Task(id="1.1", title="c", kind=Kind.WORK, parent="1", needs=["1"])
    problems = validate_tree({"1": plan, "1.1": child}, {})
    assert problems == ["1.1: field `needs[0]`: '1' is an ancestor or descendant of '1.1'; that would never finish"]


def test_reserved_subtree_needs_no_parent_file() -> None:
    fix = Task(id="0.1", title="fix the tip", kind=Kind.WORK, parent="0")
    assert validate_tree({"0.1": fix}, {}) == []


def test_ids_that_look_like_numbers_stay_text() -> None:
    task = store.parse_task("id: 2.10\ntitle: t\nkind: work\nparent: 2\nneeds: [2.1, 3]\n", "x")
    assert (task.id, task.parent, task.needs) == ("2.10", "2", ["2.1", "3"])


@pytest.mark.parametrize("start", list(Status))
@pytest.mark.parametrize("end", list(Status))
def test_transitions_follow_the_table(start: Status, end: Status) -> None:
    task = Task(id="1", title="t", kind=Kind.WORK, parent=None, status=start)
    if end in TRANSITIONS[start]:
        assert transition(task, end).status is end
    else:
        with pytest.raises(TransitionError, match=f"from {start} to {end}"):
            transition(task, end)


def test_only_real_failures_use_up_attempts() -> None:
    outcomes = [Outcome.CONFLICT, Outcome.CRASHED, Outcome.FAILED, Outcome.TIMEOUT, Outcome.REFUSED, Outcome.LANDED]
    task = Task(
        id="1", title="t", kind=Kind.WORK, parent=None,
        attempts=[Attempt(number=n + 1, outcome=o) for n, o in enumerate(outcomes)],
    )
    assert task.failed_attempts == 3


def test_yaml_problems_name_the_file_and_line_once() -> None:
    with pytest.raises(ValidationError) as refused:
        store.parse_task(b"id: 9\ntitle: a\x07\n", "9.yaml")
    assert refused.value.problems == ["9.yaml: line 2: not valid YAML: unacceptable character #x0007: "
                                      "control characters are not allowed"]
    with pytest.raises(ValidationError) as refused:
        store.parse_task(b"id: 9\ntitle: caf\xc3\n", "9.yaml")
    assert refused.value.problems == ["9.yaml: line 2: not UTF-8: byte 0xc3 at offset 16; save the file as UTF-8"]
