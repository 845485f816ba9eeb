"""What each agent is told: the bounded views of the plan (`daemon/briefing.py`) on large generated trees,
and every template rendered for every role through `prompts.render` (StrictUndefined), built in or
overridden."""

from __future__ import annotations

import re
from collections import Counter
from pathlib import Path
from typing import Any

import pytest

from swarmd import prompts
from swarmd.agents.scripted import section
from swarmd.daemon import briefing
from swarmd.tasks import Attempt, Cycle, Kind, Outcome, Result, RootPlanner, Status, Task, Verdict

GOAL = "# Goal\n\nMake it work.\n"
STATUSES = (Status.DONE, Status.DONE, Status.TODO, Status.RUNNING, Status.FAILED, Status.BLOCKED)
CYCLE = Cycle(number=2, root=RootPlanner(status=Status.RUNNING))
LAST = Cycle(number=1, verdict=Verdict.CONTINUE, summary="Half of it works.", notes=["tests/test_x.py fails"])
LISTED = re.compile(r"^- (\S+) \[\w+, \w+\] (.+?)(?: \(needs [^)]*\))?$", re.MULTILINE)  # as scripted.plan reads it


def task(task_id: str, kind: Kind = Kind.WORK, status: Status = Status.TODO, **fields: Any) -> Task:
    return Task(id=task_id, title=f"Task {task_id}", kind=kind, status=status,
                parent=task_id.rpartition(".")[0] or None, **fields)


def big_tree(width: int = 30, leaves: int = 3, crowded: str = "7.3", crowd: int = 50) -> dict[str, Task]:
    """`width` top-level plan tasks, `width` plan tasks under each, `leaves` work tasks under each of those
    (`crowd` under `crowded`), statuses taking turns; done tasks hand back a summary, failed ones a reason."""
    tasks: dict[str, Task] = {}
    n = 0
    for top in range(1, width + 1):
        tasks[str(top)] = task(str(top), Kind.PLAN, Status.RUNNING)
        for mid in range(1, width + 1):
            parent = f"{top}.{mid}"
            tasks[parent] = task(parent, Kind.PLAN, Status.RUNNING)
            for leaf in range(1, (crowd if parent == crowded else leaves) + 1):
                status = STATUSES[n % len(STATUSES)]
                n += 1
                task_id = f"{parent}.{leaf}"
                done = status is Status.DONE
                tasks[task_id] = task(
                    task_id, status=status, needs=[f"{parent}.{leaf - 1}"] if leaf % 5 == 0 else [],
                    result=Result(summary=f"did {task_id}", concerns=["x" * 50] * (leaf % 2)) if done else None,
                    attempts=[Attempt(number=1, cycle=1, outcome=Outcome.FAILED, reason=f"why {task_id} failed")]
                    if status is Status.FAILED else [],
                )
    tasks["0.1"] = Task(id="0.1", title="Make `make check` pass again", kind=Kind.WORK, status=Status.FAILED, parent="0")
    return tasks


def under(tasks: dict[str, Task], task_id: str) -> Counter[str]:
    return Counter(t.status.value for t in tasks.values() if t.id.startswith(task_id + "."))


def render(name: str, context: dict[str, Any], workdir: Path) -> str:
    return prompts.render(name, workdir, context)


@pytest.fixture(scope="module")
def tasks() -> dict[str, Task]:
    return big_tree()


def test_a_sub_planner_sees_the_path_down_to_it_and_counts_for_the_rest(tasks: dict[str, Task], tmp_path: Path) -> None:
    context = briefing.planner(GOAL, CYCLE, LAST, tasks, "7.3", max_depth=3)
    top, middle, own = context["levels"]
    assert (top["parent"], top["on_path"]) == (None, "7")
    assert (middle["parent"]["id"], middle["on_path"]) == ("7", "7.3")
    assert (own["parent"]["id"], own["on_path"]) == ("7.3", None)

    assert "7" in [t["id"] for t in top["tasks"]] and len(top["tasks"]) == briefing.LEVEL_CAP
    assert top["more"]["tasks"] == 30 - briefing.LEVEL_CAP
    others = Counter[str]()
    for top_id in (str(n) for n in range(1, 31) if n != 7):
        others += under(tasks, top_id)
    assert top["rest"]["tasks"] == others.total() and top["rest"]["counts"] == dict(others)
    assert len(middle["tasks"]) == briefing.LEVEL_CAP and "7.3" in [t["id"] for t in middle["tasks"]]
    assert middle["rest"]["tasks"] == sum(under(tasks, f"7.{n}").total() for n in range(1, 31) if n != 3)

    assert len(own["tasks"]) == briefing.CHILDREN_CAP and own["more"]["tasks"] == 50 - briefing.CHILDREN_CAP
    pending = {i for i, t in tasks.items() if t.parent == "7.3" and t.status is not Status.DONE}
    assert pending <= {t["id"] for t in own["tasks"]} and own["more"]["counts"] == {"done": 10}, \
        "what still needs attention is listed before done tasks are"
    for row in own["tasks"]:
        assert row["below"] == {"tasks": 0, "counts": {}}
    assert context["plan"]["tasks"] == len(tasks) and context["fixes"] == {"tasks": 1, "counts": {"failed": 1}}
    assert {t["id"] for t in context["tree"]} == {t["id"] for level in context["levels"] for t in level["tasks"]}

    prompt = render("planner", context, tmp_path)
    listing = section(prompt, "The plan so far")
    assert ".swarm/tasks/" in listing and f"... and {50 - briefing.CHILDREN_CAP} more here" in listing
    assert "Below the other tasks on this level:" in listing and "(7.3 is your task)" in listing
    assert "Task 12.4.1" not in prompt, "nothing of another subtree's depths is listed"
    assert re.search(r"Use ids\s+7\.3\.51, 7\.3\.52, 7\.3\.53, \.\.\.", prompt)
    assert len(prompt.encode()) < 20_000


def test_the_root_planner_sees_its_own_tasks_with_counts_below_each(tasks: dict[str, Task], tmp_path: Path) -> None:
    context = briefing.planner(GOAL, CYCLE, LAST, tasks, "root", max_depth=3)
    [own] = context["levels"]
    assert own["parent"] is None and len(own["tasks"]) == 30, "30 fit under the cap of a planner's own tasks"
    for row in own["tasks"]:
        counted = under(tasks, row["id"])
        assert row["below"]["tasks"] == counted.total()
        assert row["below"]["counts"] == {s: counted[s] for s in row["below"]["counts"]}
    prompt = render("planner", context, tmp_path)
    assert f"  {under(tasks, '7').total()} tasks below it: " in prompt
    assert "Task 7.1 " not in prompt and re.search(r"Use ids\s+31, 32, 33, \.\.\.", prompt)


def test_handoffs_are_capped_and_long_texts_cut(tmp_path: Path) -> None:
    long = Result(summary="s" * 5000, notes=["n" * 1000] * 8, concerns=["c"] * 2)
    children = {f"4.{n}": task(f"4.{n}", status=Status.DONE, result=long) for n in range(1, 31)}
    children["4.7"] = task("4.7", status=Status.FAILED, attempts=[
        Attempt(number=1, cycle=1, outcome=Outcome.FAILED, reason="r" * 5000)])
    tasks = {"4": task("4", Kind.PLAN, Status.RUNNING, attempts=[Attempt(number=1, cycle=1, outcome=Outcome.LANDED)]),
             **children}
    context = briefing.planner(GOAL, CYCLE, LAST, tasks, "4", max_depth=3)
    handoffs = context["handoffs"]
    assert context["woken"] and len(handoffs) == briefing.HANDOFF_CAP
    assert "4.7" in [h["id"] for h in handoffs], "a failed task's handoff is always among those shown"
    assert context["more_handoffs"] == {"tasks": 30 - briefing.HANDOFF_CAP, "counts": {"done": 30 - briefing.HANDOFF_CAP}}
    failed = next(h for h in handoffs if h["id"] == "4.7")
    assert failed["reason"].endswith(briefing.CUT) and len(failed["reason"]) == briefing.TEXT_CAP + len(briefing.CUT)
    done = next(h for h in handoffs if h["id"] != "4.7")["result"]
    assert len(done["summary"]) == briefing.TEXT_CAP + len(briefing.CUT)
    assert done["concerns"] == ["c", "c"], "concerns come before notes"
    assert done["notes"] and done["left_out"] == 8 - len(done["notes"])
    assert all(len(note) == briefing.ITEM_CAP + len(briefing.CUT) for note in done["notes"])
    shown = done["summary"] + "".join(done["concerns"] + done["follow_ups"] + done["notes"])
    assert len(shown) <= briefing.HANDOFF_CHARS
    prompt = render("planner", context, tmp_path)
    assert f"... and {30 - briefing.HANDOFF_CAP} more handoffs" in prompt and "s" * 601 not in prompt
    assert len(prompt.encode()) < 30_000


def test_the_judge_sees_the_top_levels_that_fit_and_the_failed_tasks(tasks: dict[str, Task], tmp_path: Path) -> None:
    context = briefing.judge(GOAL, CYCLE, tasks, None)
    assert [row["id"] for row in context["tree"]] == [str(n) for n in range(1, 31)], "only the top level fits"
    assert not any(row["open"] for row in context["tree"])
    failed = sorted((t.id for t in tasks.values() if t.status is Status.FAILED), key=briefing.order)
    assert [t["id"] for t in context["failed"]] == failed[:briefing.FAILED_CAP]
    assert context["more_failed"] == len(failed) - briefing.FAILED_CAP
    assert context["counts"] == dict(context["plan"]["counts"]) and context["plan"]["tasks"] == len(tasks)
    prompt = render("judge", context, tmp_path)
    assert f"... and {len(failed) - briefing.FAILED_CAP} more" in prompt and f"why {failed[1]} failed" in prompt
    assert len(prompt.encode()) < 20_000

    small = big_tree(width=2, leaves=2, crowd=2)
    rows = briefing.judge(GOAL, CYCLE, small, None)["tree"]
    assert len(rows) == len(small) - 1, "a small plan is listed whole (swarmd's fix task apart)"
    assert rows[0]["open"] and rows[1]["depth"] == 1 and rows[2]["depth"] == 2
    assert "did 1.1.1" in render("judge", briefing.judge(GOAL, CYCLE, small, None), tmp_path)


def test_the_scripted_agent_still_reads_a_planners_own_tasks(tasks: dict[str, Task], tmp_path: Path) -> None:
    context = briefing.planner(GOAL, CYCLE, LAST, tasks, "7.2", max_depth=3)
    listed = dict(LISTED.findall(section(render("planner", context, tmp_path), "The plan so far")))
    assert {f"7.2.{n}": f"Task 7.2.{n}" for n in (1, 2, 3)}.items() <= listed.items()
    assert listed["7"] == "Task 7" and listed["7.2"] == "Task 7.2"


def test_prompts_stay_about_the_same_size_as_the_plan_grows(tmp_path: Path) -> None:
    small, large = big_tree(width=3, leaves=3, crowd=3), big_tree(width=30, leaves=4, crowd=4)
    for role, make in {
        "sub-planner": lambda t: briefing.planner(GOAL, CYCLE, LAST, t, "2.2", 3),
        "root planner": lambda t: briefing.planner(GOAL, CYCLE, LAST, t, "root", 3),
        "judge": lambda t: briefing.judge(GOAL, CYCLE, t, None),
    }.items():
        name = "judge" if role == "judge" else "planner"
        sizes = [len(render(name, make(t), tmp_path)) for t in (small, large)]
        assert sizes[1] < 2 * sizes[0], (role, sizes)


def contexts() -> list[tuple[str, str, dict[str, Any]]]:
    """Every template with every kind of context it gets: the root planner and sub-planners (new, woken,
    refused before, at the depth limit), workers (plain, a conflict in a merge, markers of their own, a
    failed attempt before), the judge (no tasks, a red tip, a green one), the built-in agent's system
    prompt for each role."""
    landed = [Attempt(number=1, cycle=2, outcome=Outcome.LANDED)]
    refused = [Attempt(number=1, cycle=2, outcome=Outcome.REFUSED, reason="'7' is not yours to create")]
    tree = {
        "1": task("1", Kind.PLAN, Status.RUNNING, attempts=landed, acceptance="pytest passes"),
        "1.1": task("1.1", status=Status.DONE, result=Result(summary="did it", notes=["n"], concerns=["c"], follow_ups=["f"])),
        "1.2": task("1.2", status=Status.FAILED, attempts=[Attempt(number=3, cycle=2, outcome=Outcome.FAILED, reason="exit 1")]),
        "1.3": task("1.3", Kind.PLAN, status=Status.BLOCKED, needs=["1.2"]),
        "2": task("2", Kind.PLAN, Status.TODO, attempts=refused),
        "0.1": Task(id="0.1", title="Fix", kind=Kind.WORK, status=Status.TODO, parent="0"),
    }
    woken_root = Cycle(number=2, root=RootPlanner(status=Status.RUNNING, attempts=landed))
    work = tree["1.2"]
    red = {"command": "make check", "passed": False, "commit": "0123456789abcdef", "output": "FAILED test_x"}
    green = {**red, "passed": True, "output": ""}
    cases = [
        ("planner", "root, first cycle", briefing.planner(GOAL, Cycle(number=1), None, {}, "root", 3)),
        ("planner", "root, woken", briefing.planner(GOAL, woken_root, LAST, tree, "root", 3)),
        ("planner", "sub-planner, woken", briefing.planner(GOAL, CYCLE, LAST, tree, "1", 3)),
        ("planner", "sub-planner, refused before", briefing.planner(GOAL, CYCLE, None, tree, "2", 4)),
        ("planner", "sub-planner at the depth limit", briefing.planner(GOAL, CYCLE, LAST, tree, "1.3", 3)),
        ("worker", "plain", briefing.worker(GOAL, CYCLE, LAST, tree["1.1"], 1, ())),
        ("worker", "conflict in a merge", briefing.worker(GOAL, CYCLE, None, work, 4, ("a.py", "b/c.md"), merging=True)),
        ("worker", "markers of its own", briefing.worker(GOAL, CYCLE, LAST, work, 2, ("notes.txt",))),
        ("worker", "failed before", briefing.worker(GOAL, CYCLE, LAST, work, 4, ())),
        ("judge", "no tasks", briefing.judge(GOAL, Cycle(number=1), {}, None)),
        ("judge", "a red tip", briefing.judge(GOAL, CYCLE, tree, red)),
        ("judge", "a green tip", briefing.judge(GOAL, CYCLE, tree, green)),
    ]
    tools = ["read_file", "write_file", "edit_file", "list_files", "search", "run", "finish"]
    for role, task_id, extra in (("planner", "root", ["create_task", "update_task"]), ("planner", "3", ["create_task", "update_task"]),
                                 ("worker", "3.1", []), ("judge", "root", [])):
        cases.append(("agent-system", f"{role} {task_id}", {"role": role, "task_id": task_id, "tools": tools + extra}))
    return cases


@pytest.mark.parametrize(("name", "case", "context"), contexts(), ids=[f"{n}: {c}" for n, c, _ in contexts()])
def test_every_template_renders_for_every_role(name: str, case: str, context: dict[str, Any], tmp_path: Path) -> None:
    prompt = render(name, context, tmp_path)
    assert prompt.strip() and "{{" not in prompt and "{%" not in prompt
    if name in ("planner", "worker", "judge"):
        assert "## The goal" in prompt and "$SWARM_RESULT_FILE" in prompt
    if case == "markers of its own":
        assert "lines that look like git's conflict markers" in prompt and "MERGE_HEAD" not in prompt
    if name == "worker" and context["conflict"]:
        paths = re.findall(r"^- (.+)$", section(prompt, "First: resolve a merge conflict"), re.MULTILINE)
        assert paths == list(context["conflict"]), "the scripted agent reads the paths, and nothing else, there"
    if case == "a red tip":
        assert "FAILED at 0123456789" in prompt and "FAILED test_x" in prompt
    if name == "agent-system":
        assert ("create_task" in prompt) == (context["role"] == "planner") and "finish" in prompt


@pytest.mark.parametrize("name", ["planner", "worker", "judge", "agent-system"])
def test_a_repository_overrides_any_template(name: str, tmp_path: Path) -> None:
    context = next(c for t, _, c in contexts() if t == name)
    (tmp_path / ".swarm/prompts").mkdir(parents=True)
    (tmp_path / f".swarm/prompts/{name}.md").write_text(f"mine: {name} {{{{ goal if goal is defined else role }}}}\n")
    assert render(name, context, tmp_path).startswith(f"mine: {name} ")


def test_an_override_written_for_the_earlier_context_still_renders(tasks: dict[str, Task], tmp_path: Path) -> None:
    """`tree`, `handoffs` and `counts` keep their shape (a bounded list of tasks now): overrides that used them render."""
    (tmp_path / ".swarm/prompts").mkdir(parents=True)
    (tmp_path / ".swarm/prompts/planner.md").write_text(
        "{% for t in tree %}- {{ t.id }} [{{ t.kind }}, {{ t.status }}] {{ t.title }}{% if t.needs %} (needs "
        "{{ t.needs | join(', ') }}){% endif %}\n{% endfor %}{% for h in handoffs %}{{ h.id }}: "
        "{% if h.result %}{{ h.result.summary }}{% else %}{{ h.reason }}{% endif %}\n{% endfor %}{{ next_ids[0] }}\n")
    (tmp_path / ".swarm/prompts/judge.md").write_text(
        "{% for s, n in counts.items() %}{{ n }} {{ s }} {% endfor %}\n{% for t in tree %}- {{ t.id }} {{ t.title }}"
        "{% if t.result %}: {{ t.result.summary }}{% endif %}\n{% endfor %}{{ verify }}\n")
    planner = render("planner", briefing.planner(GOAL, CYCLE, LAST, tasks, "7.3", 3), tmp_path)
    assert "- 7.3 [plan, running] Task 7.3" in planner and "7.3.51" in planner
    assert "- 1 Task 1" in render("judge", briefing.judge(GOAL, CYCLE, tasks, None), tmp_path)
