"""Every change the daemon makes to the plan: task statuses, attempts, the cycle records. Each is one
commit on the integration branch, built from the tip it lands on (so a lost race simply rebuilds)."""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterable
from datetime import UTC, datetime
from typing import TypeVar

from swarmd import store
from swarmd.daemon import tipfile
from swarmd.errors import SwarmError, UsageError
from swarmd.git.landing import Landed, commit_changes, land_branch
from swarmd.git.repo import Repo
from swarmd.git.trees import Changes
from swarmd.layout import GOAL_PATH
from swarmd.tasks import ROOT, Attempt, Cycle, Kind, Outcome, Result, Role, RootPlanner, Status, Task, Usage, transition

T = TypeVar("T", Task, RootPlanner)


class Stale(SwarmError):
    """The tip no longer holds what this change was for (the task finished or moved on meanwhile)."""


class Rewound(UsageError):
    """The integration branch was moved by something other than swarmd: landing anything more could
    land a task twice."""


def now() -> datetime:
    return datetime.now(UTC).replace(microsecond=0)


class Ledger:
    """Reads of the plan go through here too, with what was parsed kept by blob id: the daemon reads
    the tree after every event, and all but the few files that changed are parsed already."""

    def __init__(self, repo: Repo, branch: str, max_attempts: int) -> None:
        self.repo = repo
        self.branch = branch
        self.max_attempts = max_attempts
        self.parsed: store.Parsed = {}
        self._cycles: dict[str, Cycle] = {}  # blob id -> cycle record; a few per cycle
        self.written: str | None = None  # the last commit swarmd put on the branch (or found at start)

    def tip(self) -> str:
        tip = self.repo.branch_tip(self.branch)
        if tip is None:
            raise SwarmError(f"integration branch {self.branch!r} is gone; run `swarmd init` to create it again")
        return tip

    # -- every move of the integration branch --------------------------------------------------------

    def commit(self, build: Callable[[str], Changes | None], message: str, kind: str = "commit") -> Landed:
        return self._wrote(commit_changes(self.repo, self.branch, build, message, kind, guard=self.guard))

    def land(self, head: str, message: str, replay: bool, build: Callable[[str], Changes | None], base: str) -> Landed:
        landed = land_branch(self.repo, self.branch, head, message=message, replay_commits=replay, build=build,
                             base=base, guard=self.guard)
        return self._wrote(landed)

    def check_tip(self) -> str:
        """At a start, before anything is written: the tip must be the last commit swarmd wrote in an
        earlier run (`.git/swarm/tip`), or an agent a crash left running moved it meanwhile."""
        self.written = tipfile.last_written(self.repo.swarm_dir, self.branch)
        tip = self.tip()
        problem = tipfile.foreign_move(self.repo, self.branch, tip, self.written, starting=True)
        if problem:
            raise Rewound(problem)
        self._remember(tip)
        return tip

    def guard(self, tip: str) -> None:
        """Called with every tip a write builds on, and every tip the loop reads. swarmd is the only
        writer of the branch, so while it runs any other tip was put there by someone else: rewound, or
        moved forward by an agent that committed on it; either could land a task twice (ADR 0019)."""
        problem = tipfile.foreign_move(self.repo, self.branch, tip, self.written)
        if problem:
            raise Rewound(problem)

    def _wrote(self, landed: Landed) -> Landed:
        if landed.commit is not None:
            self._remember(landed.commit)
        return landed

    def _remember(self, commit: str) -> None:
        self.written = commit
        tipfile.remember(self.repo.swarm_dir, self.branch, commit)

    # -- cycles ---------------------------------------------------------------------------------

    def open_cycle(self, goal: str) -> Cycle:
        """The cycle to work on: the open one after a crash or a stop, else a new one with the goal copied."""

        def build(tip: str) -> Changes | None:
            latest = store.latest_cycle(self.repo, tip)
            if latest is not None and not latest.closed:
                return None
            cycle = Cycle(number=(latest.number + 1) if latest else 1, started_at=now())
            return {GOAL_PATH: goal.encode(), store.cycle_path(cycle.number): store.dump_cycle(cycle)}

        latest = store.latest_cycle(self.repo, self.tip())
        number = (latest.number + 1) if latest and latest.closed else (latest.number if latest else 1)
        self.commit(build, f"start cycle {number}")
        cycle = store.latest_cycle(self.repo, self.tip())
        assert cycle is not None
        return cycle

    def update_cycle(self, number: int, change: Callable[[Cycle], Cycle], message: str) -> Landed:
        def build(tip: str) -> Changes | None:
            cycle = self.cycle_at(tip, number)
            if cycle.closed:
                raise Stale(f"cycle {number} is already closed")
            return {store.cycle_path(number): store.dump_cycle(change(cycle))}

        return self.commit(build, message)

    def cycle_at(self, tip: str, number: int) -> Cycle:
        path = store.cycle_path(number)
        blob = self.repo.blob_id(tip, path)
        if blob is None:
            raise Stale(f"cycle {number} has no record at {tip[:10]}")
        if blob not in self._cycles:
            if len(self._cycles) > 64:
                self._cycles.clear()
            self._cycles[blob] = store.parse_cycle(self.repo.read_blob(blob), path)
        return self._cycles[blob]

    def tree(self, tip: str, max_depth: int | None = None) -> store.TaskTree:
        return store.read_tree(self.repo, tip, max_depth, cache=self.parsed)

    def close_cycle(self, number: int, verdict_result: dict[str, object], judge_usage: Usage | None, red_s: float) -> Landed:
        def build(tip: str) -> Changes | None:
            cycle = self.cycle_at(tip, number)
            if cycle.closed:
                raise Stale(f"cycle {number} is already closed")
            tasks = self.tree(tip).tasks.values()
            usage, by_role = cycle_usage(number, tasks, cycle.root, judge_usage)
            finished_here = Counter(
                t.status for t in tasks
                if t.status in (Status.DONE, Status.FAILED) and t.attempts and t.attempts[-1].cycle == number
            )
            closed = cycle.model_copy(update={
                **verdict_result,
                "tasks": dict(sorted(Counter(t.status for t in tasks).items())),
                "done": finished_here[Status.DONE],
                "failed": finished_here[Status.FAILED],
                "duration_s": round((now() - cycle.started_at).total_seconds(), 1) if cycle.started_at else 0.0,
                "red_s": round(red_s, 1),
                "usage": usage,
                "usage_by_role": by_role,
            })
            return {store.cycle_path(number): store.dump_cycle(Cycle.model_validate(closed.model_dump()))}

        return self.commit(build, f"close cycle {number}: {verdict_result['verdict']}", kind="judge")

    # -- tasks ----------------------------------------------------------------------------------

    def start(self, starts: Iterable[tuple[str, int]], cycle: int) -> None:
        """Mark tasks running (the root planner: in the cycle record), in one commit."""
        starts = list(starts)

        def build(tip: str) -> Changes | None:
            changes: dict[str, bytes | None] = {}
            for task_id, _ in starts:
                if task_id == ROOT:
                    record = self.cycle_at(tip, cycle)
                    if record.root.status is not Status.RUNNING:
                        root = record.root.model_copy(update={"status": Status.RUNNING})
                        changes[store.cycle_path(cycle)] = store.dump_cycle(record.model_copy(update={"root": root}))
                    continue
                task = self.task_at(tip, task_id)
                if task.status is not Status.RUNNING:
                    changes[store.task_path(task_id)] = store.dump_task(transition(task, Status.RUNNING))
            return changes

        self.commit(build, "start " + ", ".join(f"{t} (attempt {a})" for t, a in starts))

    def block(self, task_ids: list[str]) -> None:
        def build(tip: str) -> Changes | None:
            changes = {}
            for task_id in task_ids:
                task = self.task_at(tip, task_id)
                if task.status is Status.TODO:
                    changes[store.task_path(task_id)] = store.dump_task(transition(task, Status.BLOCKED))
            return changes

        self.commit(build, "block " + ", ".join(task_ids) + ": something they need failed")

    def record(self, task_id: str, cycle: int, attempt: Attempt, message: str, final: bool = False) -> Status:
        """Record an attempt that did not land; return the task's status after it (failed, whatever
        its attempts, when `final`: its budget is spent)."""
        result: list[Status] = []

        def build(tip: str) -> Changes | None:
            if task_id == ROOT:
                record = self.cycle_at(tip, cycle)
                root = self.after_attempt(record.root, attempt, final)
                result[:] = [root.status]
                return {store.cycle_path(cycle): store.dump_cycle(record.model_copy(update={"root": root}))}
            task = self.after_attempt(self.task_at(tip, task_id), attempt, final)
            result[:] = [task.status]
            return {store.task_path(task_id): store.dump_task(task)}

        self.commit(build, message)
        return result[0]

    def after_attempt(self, task: T, attempt: Attempt, final: bool = False) -> T:
        """A task with one more attempt that did not land: running again (a conflict re-run), back to
        todo for another try, or failed when its failed attempts reach `max_attempts`."""
        if task.status is not Status.RUNNING:
            raise Stale(f"{getattr(task, 'id', ROOT)} is {task.status}, not running")
        attempts = [*task.attempts, attempt]
        failures = sum(1 for a in attempts if a.outcome.counts_as_failure)
        if attempt.outcome is Outcome.CONFLICT:
            status = Status.RUNNING
        elif failures >= self.max_attempts or final:
            status = Status.FAILED
        else:
            status = Status.TODO
        return task.model_copy(update={"attempts": attempts, "status": status})

    def task_at(self, tip: str, task_id: str) -> Task:
        task = store.read_task(self.repo, tip, task_id, cache=self.parsed)
        if task is None:
            raise Stale(f"task {task_id} does not exist at {tip[:10]}")
        return task


def with_result(result: Result | None, attempts: list[Attempt]) -> Result | None:
    """The handoff to store on a task: the agent's, with the usage of every attempt summed."""
    total = sum((a.usage for a in attempts if a.usage), Usage())
    if result is None:
        return None
    return result.model_copy(update={"usage": total if total != Usage() else None})


def cycle_usage(
    number: int, tasks: Iterable[Task], root: RootPlanner, judge: Usage | None
) -> tuple[Usage, dict[Role, Usage]]:
    by_role: dict[Role, Usage] = {}

    def add(role: Role, usage: Usage | None) -> None:
        if usage is not None:
            by_role[role] = by_role.get(role, Usage()) + usage

    for task in tasks:
        role = Role.PLANNER if task.kind is Kind.PLAN else Role.WORKER
        for attempt in task.attempts:
            if attempt.cycle == number:
                add(role, attempt.usage)
    for attempt in root.attempts:
        add(Role.PLANNER, attempt.usage)
    add(Role.JUDGE, judge)
    return sum(by_role.values(), Usage()), dict(sorted(by_role.items()))
