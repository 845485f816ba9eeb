"""What to start now: a pure function of the task tree, what is running, and the limits per role.

No clock, no I/O: the loop calls `decide` after every event and carries out what it returns.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from swarmd.tasks import RESERVED_ROOT, ROOT, Kind, Role, RootPlanner, Status, Task, is_under
FINISHED = frozenset({Status.DONE, Status.FAILED, Status.BLOCKED})


@dataclass(frozen=True)
class Decision:
    start: list[tuple[Role, str]] = field(default_factory=list)  # (role, task id or ROOT), in order
    block: list[str] = field(default_factory=list)  # todo tasks whose needs failed: mark them blocked
    judge: bool = False  # nothing runs and nothing can: close the cycle


def order(task_id: str) -> tuple[int, ...]:
    """Ids sort as numbers, level by level: 2 < 2.1 < 2.10 < 10."""
    return tuple(int(part) for part in task_id.split("."))


def decide(
    tasks: Mapping[str, Task], root: RootPlanner, running: Mapping[str, Role], planners: int, workers: int
) -> Decision:
    status = {task_id: task.status for task_id, task in tasks.items()}
    block = _to_block(tasks, status)
    for task_id in block:
        status[task_id] = Status.BLOCKED

    children: dict[str | None, list[str]] = {}
    for task_id, task in tasks.items():
        if not is_under(task_id, RESERVED_ROOT):
            children.setdefault(task.parent, []).append(task_id)

    def below_finished(parent: str | None) -> bool:
        return all(status[child] in FINISHED for child in children.get(parent, []))

    def ready(task: Task) -> bool:
        return all(status.get(need) is Status.DONE for need in task.needs)

    wanted: list[tuple[Role, str]] = []
    if ROOT not in running and (
        root.status is Status.TODO or (root.status is Status.RUNNING and below_finished(None))
    ):
        wanted.append((Role.PLANNER, ROOT))
    for task_id in sorted(tasks, key=order):
        task = tasks[task_id]
        if task_id in running or status[task_id] in FINISHED or not ready(task):
            continue
        if task.kind is Kind.WORK and status[task_id] is Status.TODO:
            wanted.append((Role.WORKER, task_id))
        elif task.kind is Kind.PLAN and (status[task_id] is Status.TODO or below_finished(task_id)):
            wanted.append((Role.PLANNER, task_id))

    room = {
        Role.PLANNER: planners - sum(1 for role in running.values() if role is Role.PLANNER),
        Role.WORKER: workers - sum(1 for role in running.values() if role is Role.WORKER),
    }
    start = []
    for role, task_id in wanted:
        if room[role] > 0:
            room[role] -= 1
            start.append((role, task_id))
    return Decision(start, block, judge=not running and not wanted)


def _to_block(tasks: Mapping[str, Task], status: dict[str, Status]) -> list[str]:
    """Todo tasks that can never run because something they need failed (directly or through a chain)."""
    blocked: list[str] = []
    changed = True
    while changed:
        changed = False
        for task_id in sorted(tasks, key=order):
            if status[task_id] is Status.TODO and task_id not in blocked and any(
                status.get(need) in (Status.FAILED, Status.BLOCKED) for need in tasks[task_id].needs
            ):
                blocked.append(task_id)
                status[task_id] = Status.BLOCKED
                changed = True
    for task_id in blocked:
        status[task_id] = tasks[task_id].status  # the caller applies the change
    return blocked
