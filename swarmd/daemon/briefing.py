"""What each agent is told: the context its prompt template is rendered with.

Pure. A prompt stays about the same size however large the plan grows: a planner sees the path from the
top of the plan down to its own tasks, level by level, and every other part of the tree as counts by
status; the judge sees the top levels that fit and the failed tasks; lists are capped and handed-back
texts cut. The whole plan is in `.swarm/tasks/` of every worktree, and the prompts say so.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from swarmd.daemon.scheduler import order
from swarmd.tasks import RESERVED_ROOT, ROOT, Attempt, Cycle, Outcome, Result, Status, Task, parent_id

LEVEL_CAP = 25  # tasks listed on each level above a planner's own tasks
CHILDREN_CAP = 40  # a planner's own tasks listed
HANDOFF_CAP = 12  # handoffs a planner sees
JUDGE_ROWS = 40  # tasks the judge sees listed: whole levels from the top while they fit
FAILED_CAP = 10  # failed tasks listed for the judge
JUDGE_ROW_CHARS = 600  # characters of a listed task's handoff the judge sees: its summary and concerns
TEXT_CAP = 600  # characters of a handoff's summary or an attempt's reason
ITEM_CAP = 300  # characters of one note, concern or follow-up
HANDOFF_CHARS = 1200  # characters of one handoff: its summary, then concerns, follow-ups and notes while they fit
CUT = " [...]"
STATUS_ORDER = (Status.DONE, Status.RUNNING, Status.TODO, Status.BLOCKED, Status.FAILED)
URGENCY = {Status.FAILED: 0, Status.BLOCKED: 1, Status.RUNNING: 2, Status.TODO: 3, Status.DONE: 4}


@dataclass(frozen=True)
class _Index:
    """The tree read once: children by parent, and the statuses of every task below an id."""

    tasks: dict[str, Task]
    kids: dict[str | None, list[str]]
    below: dict[str, Counter[Status]]

    def children(self, parent: str | None) -> list[str]:
        """In id order (sorted here, for the few parents a prompt shows, not for every one)."""
        return sorted(self.kids.get(parent, []), key=order)

    def subtree(self, task_id: str) -> Counter[Status]:
        return self.below.get(task_id, Counter())


def _index(tasks: dict[str, Task]) -> _Index:
    children: dict[str | None, list[str]] = defaultdict(list)
    below: dict[str, Counter[Status]] = defaultdict(Counter)
    for task_id, task in tasks.items():
        children[task.parent].append(task_id)
        head = task.parent
        while head:
            below[head][task.status] += 1
            head = parent_id(head)
    return _Index(tasks, dict(children), dict(below))


def _tally(statuses: Counter[Status]) -> dict[str, Any]:
    """`{"tasks": 52, "counts": {"done": 40, "todo": 12}}`, statuses in a fixed order."""
    return {"tasks": sum(statuses.values()), "counts": {s.value: statuses[s] for s in STATUS_ORDER if statuses[s]}}


def _statuses(tasks: Iterable[Task]) -> Counter[Status]:
    return Counter(task.status for task in tasks)


def _clip(text: str | None, limit: int) -> str | None:
    if text is None or len(text) <= limit:
        return text
    return text[:limit].rstrip() + CUT


def _task_view(task: Task) -> dict[str, Any]:
    return task.model_dump(mode="json")


def _row(index: _Index, task_id: str) -> dict[str, Any]:
    """A task as a list shows it: the task, and what is below it."""
    return {**_task_view(index.tasks[task_id]), "below": _tally(index.subtree(task_id))}


def _pick(ids: list[str], tasks: dict[str, Task], cap: int, keep: str | None = None) -> tuple[list[str], list[str]]:
    """At most `cap` of `ids` (in id order), and the rest: `keep` first, then what still needs attention
    (failed, blocked, running, todo), then the latest done."""
    if len(ids) <= cap:
        return ids, []

    def rank(task_id: str) -> tuple[Any, ...]:
        status = tasks[task_id].status
        newest_first = tuple(-n for n in order(task_id)) if status is Status.DONE else order(task_id)
        return (task_id != keep, URGENCY[status], newest_first)

    chosen = set(sorted(ids, key=rank)[:cap])
    return [i for i in ids if i in chosen], [i for i in ids if i not in chosen]


def _level(index: _Index, parent: str | None, on_path: str | None, cap: int) -> dict[str, Any]:
    """One level of the path down to a planner: the tasks under `parent`, capped. On a level above the
    planner's own (`on_path` is the task that leads down to it), what is below the other tasks is one
    tally; on its own level, each task listed has its own, and `rest` is what is below the ones left out."""
    ids = index.children(parent)
    shown, hidden = _pick(ids, index.tasks, cap, on_path)
    rest: Counter[Status] = Counter()
    for task_id in (hidden if on_path is None else ids):
        if task_id != on_path:
            rest += index.subtree(task_id)
    return {
        "parent": _task_view(index.tasks[parent]) if parent else None,
        "on_path": on_path,
        "tasks": [_row(index, i) for i in shown],
        "more": _tally(_statuses(index.tasks[i] for i in hidden)),
        "rest": _tally(rest),
    }


def _levels(index: _Index, owner: str | None) -> list[dict[str, Any]]:
    """From the top of the plan down to the planner's own tasks (the last level)."""
    path = owner.split(".") if owner else []
    ancestors = [".".join(path[:n]) for n in range(1, len(path) + 1)]
    levels = [_level(index, parent, on_path, LEVEL_CAP) for parent, on_path in zip([None, *ancestors], ancestors)]
    return [*levels, _level(index, owner, None, CHILDREN_CAP)]


def _result(result: Result | None, summary_cap: int, budget: int) -> dict[str, Any] | None:
    """A handoff in at most about `budget` characters: the summary cut at `summary_cap`, then concerns,
    follow-ups and notes (in that order of importance), each cut at ITEM_CAP, while they fit. `left_out`
    counts the items that did not."""
    if result is None:
        return None
    summary = _clip(result.summary, summary_cap) or ""
    room = budget - len(summary)
    view: dict[str, Any] = {**result.model_dump(mode="json"), "summary": summary, "left_out": 0}
    for key in ("concerns", "follow_ups", "notes"):
        kept = []
        for item in getattr(result, key):
            item = _clip(item, ITEM_CAP) or ""
            if len(item) > room:
                view["left_out"] += 1
                continue
            room -= len(item)
            kept.append(item)
        view[key] = kept
    return view


def _reason(task: Task) -> str | None:
    return _clip(task.attempts[-1].reason, TEXT_CAP) if task.attempts else None


def _handoffs(index: _Index, owner: str | None) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    """What the tasks directly below the planner handed back, at most HANDOFF_CAP of them: failed and
    blocked ones first, then those with concerns or follow-ups, then the latest."""
    ids = index.children(owner)

    def rank(task_id: str) -> tuple[Any, ...]:
        task = index.tasks[task_id]
        flagged = task.result is not None and bool(task.result.concerns or task.result.follow_ups)
        urgent = 0 if task.status in (Status.FAILED, Status.BLOCKED) else 1 if flagged else 2 if task.result else 3
        return (urgent, tuple(-n for n in order(task_id)))

    chosen = set(sorted(ids, key=rank)[:HANDOFF_CAP])
    shown = [index.tasks[i] for i in ids if i in chosen]
    views = [{**_task_view(t), "result": _result(t.result, TEXT_CAP, HANDOFF_CHARS), "reason": _reason(t)} for t in shown]
    return views, _tally(_statuses(index.tasks[i] for i in ids if i not in chosen))


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
    attempts = task.attempts if task else cycle.root.attempts
    woken = any(a.outcome is Outcome.LANDED and (task or a.cycle == cycle.number) for a in attempts)
    index = _index(tasks)
    levels = _levels(index, owner)
    handoffs, more_handoffs = _handoffs(index, owner)
    return {
        "cycle": cycle.number,
        "goal": goal,
        "judge": last.model_dump(mode="json") if last else None,
        "task": _task_view(task) if task else None,
        "plan": _tally(_statuses(tasks.values())),
        "levels": levels,
        "fixes": _tally(index.subtree(RESERVED_ROOT)),
        # every task the levels list, in id order (the variable templates before the levels used)
        "tree": sorted((row for level in levels for row in level["tasks"]), key=lambda row: order(row["id"])),
        "woken": woken,
        "handoffs": handoffs,
        "more_handoffs": more_handoffs,
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


def _judge_rows(index: _Index) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    """The top-level tasks (at most JUDGE_ROWS), then each next level whole while the list stays within
    JUDGE_ROWS. Each row has its `depth` (0 at the top) and `open`: whether its children are listed."""
    top, hidden = _pick(index.children(None), index.tasks, JUDGE_ROWS)
    levels = [top]
    while True:
        below = [c for i in levels[-1] for c in index.kids.get(i, [])]
        if not below or sum(map(len, levels)) + len(below) > JUDGE_ROWS:
            break
        levels.append(below)
    opened = {i for level in levels[:-1] for i in level}
    rows = []
    for task_id in sorted((i for level in levels for i in level), key=order):
        task = index.tasks[task_id]
        rows.append({**_row(index, task_id), "result": _result(task.result, ITEM_CAP, JUDGE_ROW_CHARS),
                     "depth": task_id.count("."), "open": task_id in opened})
    return rows, _tally(_statuses(index.tasks[i] for i in hidden))


def judge(goal: str, cycle: Cycle, tasks: dict[str, Task], verify: dict[str, Any] | None,
          budget: str | None = None) -> dict[str, Any]:
    index = _index(tasks)
    rows, more = _judge_rows(index)
    failed = [tasks[i] for i in sorted((i for i, t in tasks.items() if t.status is Status.FAILED), key=order)]
    ran = [t for t in tasks.values() if any(a.cycle == cycle.number for a in t.attempts)]
    plan = _tally(_statuses(tasks.values()))
    return {
        "cycle": cycle.number,
        "goal": goal,
        "budget_spent": budget,  # why the cycle ends with work left: its budget is spent
        "counts": plan["counts"],
        "plan": plan,
        "this_cycle": _tally(_statuses(ran)),
        "tree": rows,
        "more": more,
        "failed": [{**_task_view(t), "reason": _reason(t)} for t in failed[:FAILED_CAP]],
        "more_failed": len(failed) - min(len(failed), FAILED_CAP),
        "fixes": _tally(index.subtree(RESERVED_ROOT)),
        "verify": verify,
    }
