"""What each agent is told: the context its prompt template is rendered with."""

from __future__ import annotations

from collections import Counter
from typing import Any

from swarmd.daemon.scheduler import order
from swarmd.tasks import ROOT, Attempt, Cycle, Outcome, Task


def _task_view(task: Task) -> dict[str, Any]:
    return task.model_dump(mode="json")


def _previous(attempts: list[Attempt]) -> str | None:
    """Why the last attempt did not land, when it matters to the next one."""
    if attempts and attempts[-1].outcome.counts_as_failure and attempts[-1].reason:
        return f"Attempt {attempts[-1].number} ({attempts[-1].outcome}): {attempts[-1].reason}"
    return None


def next_ids(tasks: dict[str, Task], owner: str | None, count: int = 3) -> list[str]:
    used = [int(t.rpartition(".")[2]) for t in tasks if (t.rpartition(".")[0] or None) == owner and t != "0"]
    first = max(used, default=0) + 1
    prefix = f"{owner}." if owner else ""
    return [f"{prefix}{n}" for n in range(first, first + count)]


def planner(
    goal: str, cycle: Cycle, last: Cycle | None, tasks: dict[str, Task], task_id: str, max_depth: int
) -> dict[str, Any]:
    task = tasks.get(task_id) if task_id != ROOT else None
    owner = task.id if task else None
    depth = owner.count(".") + 1 if owner else 0
    below = [t for t in tasks.values() if t.parent == owner and not t.id.startswith("0.")]
    attempts = task.attempts if task else cycle.root.attempts
    woken = any(a.outcome is Outcome.LANDED and (task or a.cycle == cycle.number) for a in attempts)
    return {
        "cycle": cycle.number,
        "goal": goal,
        "judge": last.model_dump(mode="json") if last else None,
        "task": _task_view(task) if task else None,
        "tree": [_task_view(tasks[t]) for t in sorted(tasks, key=order)],
        "woken": woken,
        "handoffs": [
            {**_task_view(t), "reason": t.attempts[-1].reason if t.attempts else None}
            for t in sorted(below, key=lambda t: order(t.id))
        ],
        "next_ids": next_ids(tasks, owner),
        "can_delegate": depth + 2 <= max_depth,
        "previous": _previous(attempts),
    }


def worker(
    goal: str, cycle: Cycle, last: Cycle | None, task: Task, attempt: int, conflict: tuple[str, ...],
    merging: bool = False,
) -> dict[str, Any]:
    return {
        "cycle": cycle.number,
        "judge": last.model_dump(mode="json") if last else None,
        "attempt": attempt,
        "goal": goal,
        "task": _task_view(task),
        "conflict": list(conflict),
        "merging": merging,  # a merge of the tip is in progress (else the markers are the branch's own)
        "previous": _previous(task.attempts),
    }


def judge(goal: str, cycle: Cycle, tasks: dict[str, Task], verify: dict[str, Any] | None) -> dict[str, Any]:
    return {
        "cycle": cycle.number,
        "goal": goal,
        "budget_spent": False,
        "counts": dict(sorted(Counter(t.status.value for t in tasks.values()).items())),
        "tree": [_task_view(tasks[t]) for t in sorted(tasks, key=order)],
        "verify": verify,
    }

