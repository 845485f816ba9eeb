"""The task tree and cycle records as plain models, and the rules a whole tree must follow.

Pure: no I/O. Ids are the tree: `2.1.3` is a child of `2.1`, which is a child of `2`. A planner
creates ids only under its own id, so two planners can never pick the same one and need no lock.
The id `0` is reserved for tasks swarmd creates itself (`0.1`, `0.2`, ...).
"""

from __future__ import annotations

import re
from datetime import datetime
from enum import StrEnum
from typing import Annotated

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, NonNegativeFloat, NonNegativeInt

ID_PATTERN = re.compile(r"(0|[1-9][0-9]*)(\.(0|[1-9][0-9]*))*")
RESERVED_ROOT = "0"
ROOT = "root"  # in the agent contract, the task id of a cycle's root planner and of the judge


def _check_id(value: str) -> str:
    if not ID_PATTERN.fullmatch(value):
        raise ValueError("a task id is dot-separated numbers without leading zeros, such as 3 or 2.1.4")
    return value


TaskId = Annotated[str, AfterValidator(_check_id)]


class Status(StrEnum):
    TODO = "todo"
    RUNNING = "running"
    DONE = "done"
    FAILED = "failed"
    BLOCKED = "blocked"


# Every status change swarmd makes goes through `transition`; this table is the only place the rules live.
TRANSITIONS: dict[Status, frozenset[Status]] = {
    Status.TODO: frozenset({Status.RUNNING, Status.BLOCKED}),
    # back to todo: a crash cut the attempt short, or another attempt is due
    Status.RUNNING: frozenset({Status.DONE, Status.FAILED, Status.TODO}),
    # a blocked task is unblocked when the task it needs is retried; a person may give it up
    Status.BLOCKED: frozenset({Status.TODO, Status.FAILED}),
    # a person (or a planner, through a new task) may retry a failed task
    Status.FAILED: frozenset({Status.TODO}),
    Status.DONE: frozenset(),
}


class Kind(StrEnum):
    WORK = "work"
    PLAN = "plan"


class Outcome(StrEnum):
    LANDED = "landed"
    FAILED = "failed"  # the agent exited non-zero
    TIMEOUT = "timeout"
    REFUSED = "refused"  # the landing broke a rule (ownership, conflict markers)
    CONFLICT = "conflict"  # the landing conflicted; the same worker resolves it
    CRASHED = "crashed"  # the daemon died while the attempt ran
    CONFIG = "config"  # the agent said its role is misconfigured (exit 78): the role is paused
    BUDGET = "budget"  # the gateway refused its calls: a budget is spent (the task's fails it for good)

    @property
    def counts_as_failure(self) -> bool:
        """Conflict re-runs and attempts cut short by a crash do not use up `max_attempts`."""
        return self in (Outcome.FAILED, Outcome.TIMEOUT, Outcome.REFUSED)


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Role(StrEnum):
    PLANNER = "planner"
    WORKER = "worker"
    JUDGE = "judge"


class Usage(_Model):
    input_tokens: NonNegativeInt = 0
    output_tokens: NonNegativeInt = 0
    cached_tokens: NonNegativeInt = 0  # of the input tokens, those read from the provider's prompt cache
    cost_usd: NonNegativeFloat | None = None  # None: the backend could not price it

    def __add__(self, other: Usage) -> Usage:
        costs = [c for c in (self.cost_usd, other.cost_usd) if c is not None]
        return Usage(
            input_tokens=self.input_tokens + other.input_tokens,
            output_tokens=self.output_tokens + other.output_tokens,
            cached_tokens=self.cached_tokens + other.cached_tokens,
            cost_usd=sum(costs) if costs else None,
        )


class Result(_Model):
    """An agent's handoff: what the planner above reads when it is woken."""

    summary: str
    notes: list[str] = Field(default_factory=list)
    concerns: list[str] = Field(default_factory=list)
    follow_ups: list[str] = Field(default_factory=list)
    usage: Usage | None = None


class Verdict(StrEnum):
    CONTINUE = "continue"
    STOP = "stop"


class Judgement(_Model):
    """The judge's result file."""

    verdict: Verdict
    summary: str
    notes: list[str] = Field(default_factory=list)
    usage: Usage | None = None


class Attempt(_Model):
    number: int = Field(ge=1)
    cycle: int | None = Field(default=None, ge=1)
    outcome: Outcome
    reason: str | None = None
    seconds: NonNegativeFloat | None = None
    usage: Usage | None = None


class Task(_Model):
    id: TaskId
    title: str = Field(min_length=1)
    kind: Kind
    status: Status = Status.TODO
    parent: TaskId | None
    needs: list[TaskId] = Field(default_factory=list)
    description: str = ""
    acceptance: str | None = None
    attempts: list[Attempt] = Field(default_factory=list)
    result: Result | None = None

    @property
    def failed_attempts(self) -> int:
        return sum(1 for attempt in self.attempts if attempt.outcome.counts_as_failure)


class RootPlanner(_Model):
    """A cycle's root planner, tracked like a plan task: it runs at the cycle's start, is woken when
    every top-level task has finished, and is done after a run that adds no task."""

    status: Status = Status.TODO
    attempts: list[Attempt] = Field(default_factory=list)
    result: Result | None = None


class Cycle(_Model):
    """`.swarm/cycles/NNNN.yaml`: opened when the cycle starts, closed by the judge's commit."""

    number: int = Field(ge=1)
    started_at: datetime | None = None
    verdict: Verdict | None = None  # None while the cycle runs
    summary: str = ""
    notes: list[str] = Field(default_factory=list)  # the judge's notes for the next cycle's planners
    tasks: dict[Status, NonNegativeInt] = Field(default_factory=dict)  # the whole tree when the cycle closed
    done: NonNegativeInt = 0  # tasks that were finished in this cycle ...
    failed: NonNegativeInt = 0  # ... and tasks that failed in it
    duration_s: NonNegativeFloat = 0.0
    red_s: NonNegativeFloat = 0.0  # how long the integration tip failed `verify.command`
    usage: Usage = Field(default_factory=Usage)
    usage_by_role: dict[Role, Usage] = Field(default_factory=dict)
    root: RootPlanner = Field(default_factory=RootPlanner)

    @property
    def closed(self) -> bool:
        return self.verdict is not None


class TransitionError(ValueError):
    pass


def transition(task: Task, to: Status) -> Task:
    if to not in TRANSITIONS[task.status]:
        raise TransitionError(f"task {task.id}: cannot go from {task.status} to {to}")
    return task.model_copy(update={"status": to})


def parent_id(task_id: str) -> str | None:
    """The id a task's `parent` must name: `2.1` for `2.1.3`, None for a top-level task."""
    head, _, _ = task_id.rpartition(".")
    return head or None


def is_under(task_id: str, ancestor: str) -> bool:
    return task_id.startswith(ancestor + ".")


def validate_tree(tasks: dict[str, Task], source: dict[str, str], max_depth: int | None = None) -> list[str]:
    """Every rule that spans tasks, one line per problem; `source` maps an id to the file it came from."""
    problems: list[str] = []
    for task in tasks.values():
        where = source.get(task.id, task.id)
        problems.extend(f"{where}: {problem}" for problem in _task_problems(task, tasks))
        depth = task.id.count(".") + 1
        if max_depth is not None and depth > max_depth and not is_under(task.id, RESERVED_ROOT):
            problems.append(
                f"{where}: field `id`: {task.id!r} is {depth} levels deep, past `limits.depth` ({max_depth})"
            )
    problems.extend(_cycle_problems(tasks, source))
    return problems


def _task_problems(task: Task, tasks: dict[str, Task]) -> list[str]:
    problems = []
    if task.id == RESERVED_ROOT:
        problems.append("field `id`: the id 0 is reserved for swarmd's own tasks (got '0')")
    expected = parent_id(task.id)
    if task.parent != expected:
        problems.append(
            f"field `parent`: the id {task.id!r} is outside its parent's subtree (parent {task.parent!r}; "
            f"a task {task.id!r} must have parent {expected!r}, or take an id under its parent)"
        )
    elif expected is not None and expected != RESERVED_ROOT:
        parent = tasks.get(expected)
        if parent is None:
            problems.append(f"field `parent`: no task {expected!r} exists")
        elif parent.kind != Kind.PLAN:
            problems.append(f"field `parent`: task {expected!r} is a work task; only plan tasks have children")
    for index, need in enumerate(task.needs):
        field = f"field `needs[{index}]`"
        if need == task.id:
            problems.append(f"{field}: a task cannot need itself (got {need!r})")
        elif need not in tasks:
            problems.append(f"{field}: no task {need!r} exists")
        elif is_under(task.id, need) or is_under(need, task.id):
            problems.append(f"{field}: {need!r} is an ancestor or descendant of {task.id!r}; that would never finish")
    return problems


def _cycle_problems(tasks: dict[str, Task], source: dict[str, str]) -> list[str]:
    """Find `needs` loops with an iterative depth-first search (white/grey/black)."""
    state: dict[str, int] = {}
    problems = []
    for start in sorted(tasks):
        if state.get(start):
            continue
        stack: list[tuple[str, int]] = [(start, 0)]
        path: list[str] = []
        while stack:
            node, index = stack.pop()
            if index == 0:
                state[node] = 1
                path.append(node)
            needs = [n for n in tasks[node].needs if n in tasks and n != node]
            if index < len(needs):
                stack.append((node, index + 1))
                nxt = needs[index]
                if state.get(nxt) == 1:
                    loop = path[path.index(nxt):] + [nxt]
                    where = source.get(nxt, nxt)
                    problems.append(f"{where}: field `needs`: the tasks form a loop: {' -> '.join(loop)}")
                elif not state.get(nxt):
                    stack.append((nxt, 0))
            else:
                state[node] = 2
                path.pop()
    return problems
