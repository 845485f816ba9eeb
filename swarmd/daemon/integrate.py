"""A finished agent's branch onto the integration branch: the ownership rules, then one landing commit
that holds the work and the task's new status together, or a refusal with the reason."""

from __future__ import annotations

from collections.abc import Callable

from swarmd import plan_rules, store
from swarmd.daemon.bookkeeping import Ledger, Stale, with_result
from swarmd.daemon.outcomes import Conflicted, Landed, NotLanded, Superseded
from swarmd.daemon.runner import AgentRun
from swarmd.daemon.scheduler import order
from swarmd.errors import SwarmError, ValidationError
from swarmd.git.trees import Changes
from swarmd.layout import SWARM_DIR, TASKS_DIR
from swarmd.tasks import ROOT, Attempt, Outcome, Result, Role, Status, Task, transition


class Refused(SwarmError):
    """The branch broke a rule; it stays as it is, for inspection, and the attempt counts as failed."""


class Integrator:
    def __init__(self, ledger: Ledger, replay: bool, max_depth: int) -> None:
        self.ledger = ledger
        self.repo = ledger.repo
        self.replay = replay
        self.max_depth = max_depth

    def land(self, run: AgentRun, head: str, result: Result | None) -> Landed | Conflicted | NotLanded | Superseded:
        """Land the branch at `head` with the task's bookkeeping in the same commit, or say why not."""
        # The branch's own change: against the tip it started from, or merged last (a conflict re-run),
        # so a merge of the tip into it is not a change of its own.
        base = run.base if self.repo.descends_within(head, run.base) else self.repo.merge_base(self.ledger.tip(), head)
        if base is None:
            return NotLanded(Outcome.REFUSED, f"its branch shares no history with {self.ledger.branch}")
        changed = self.repo.changed_files(base, head)
        added: set[str] = set()  # filled by the planner's build, for the tip it finally lands on
        try:
            if run.role is Role.WORKER:
                if any(path == SWARM_DIR or path.startswith(SWARM_DIR + "/") for path in changed):
                    touched = ", ".join(sorted(p for p in changed if p.startswith(SWARM_DIR + "/")))
                    raise Refused(f"a worker may not change .swarm/, and this branch changed {touched}")
                build = self._worker_build(run, result)
                message = f"land {run.task_id}: {result.summary if result else 'done'}"
            else:
                proposed = self._proposed_tasks(run, head, changed)
                build = self._planner_build(run, result, proposed, added)
                message = f"plan {run.task_id}: {', '.join(sorted(proposed)) or 'nothing more to add'}"
            landed = self.ledger.land(head, _one_line(message), self.replay, build, base)
        except Refused as exc:
            return NotLanded(Outcome.REFUSED, str(exc))
        except Stale as exc:
            return Superseded(str(exc))
        if landed.conflicts:  # a conflict, or conflict markers in the branch: the worker's to resolve
            return Conflicted(landed.conflicts, landed.refused or "conflicts in " + ", ".join(landed.conflicts))
        if landed.commit is None:
            return Superseded(f"{run.task_id}: nothing landed")
        return Landed(landed.commit, tuple(sorted(added, key=order)))

    # -- workers ---------------------------------------------------------------------------------

    def _worker_build(self, run: AgentRun, result: Result | None) -> Callable[[str], Changes]:
        def build(tip: str) -> Changes:
            task = self._owner_at(tip, run)
            attempts = [*task.attempts, _landed(run, result)]
            done = transition(task, Status.DONE).model_copy(
                update={"attempts": attempts, "result": with_result(result or Result(summary="done"), attempts)}
            )
            return {store.task_path(task.id): store.dump_task(done)}

        return build

    # -- planners --------------------------------------------------------------------------------

    def _proposed_tasks(self, run: AgentRun, head: str, changed: dict[str, str | None]) -> dict[str, Task]:
        """The task files a planner's branch adds or changes, parsed; anything else refuses the landing."""
        owner = plan_rules.owner_of(run.task_id)
        proposed: dict[str, Task] = {}
        problems: list[str] = []
        for path, blob in sorted(changed.items()):
            folder, _, name = path.rpartition("/")
            if folder != TASKS_DIR or not name.endswith(".yaml"):
                problems.append(f"{path}: a planner may only add task files under {TASKS_DIR}/")
                continue
            if blob is None:
                problems.append(f"{path}: a planner may not delete a task file")
                continue
            _, mode = self.repo.entry(head, path) or (blob, 0)
            problem = store.task_entry_problem(self.repo, path, blob, mode)
            if problem:  # a symlink, or 50 MB that every later read of the tree would parse
                problems.append(problem)
                continue
            try:
                task = store.parse_task(self.repo.read_blob(blob), path)
            except ValidationError as exc:
                problems.extend(exc.problems)
                continue
            problem = plan_rules.task_problem(path, task, owner, self.max_depth)
            if problem:
                problems.append(problem)
            else:
                proposed[task.id] = task
        if problems:
            raise Refused("; ".join(problems))
        return proposed

    def _planner_build(
        self, run: AgentRun, result: Result | None, proposed: dict[str, Task], added: set[str]
    ) -> Callable[[str], Changes]:
        def build(tip: str) -> Changes:
            merged = plan_rules.merge(self.ledger.tree(tip).tasks, proposed, self.max_depth)
            added.clear()
            added.update(merged.added)
            if merged.problems:
                raise Refused("; ".join(merged.problems))
            changes: dict[str, bytes | None] = {
                store.task_path(task_id): store.dump_task(task) for task_id, task in merged.written.items()
            }
            changes.update(self._planner_done(tip, run, result, finished=not added))
            return changes

        return build

    def _planner_done(self, tip: str, run: AgentRun, result: Result | None, finished: bool) -> Changes:
        """The plan task (or the cycle's root planner) after a landed run: done if it added nothing."""
        status = Status.DONE if finished else Status.RUNNING
        if run.task_id == ROOT:
            cycle = self.ledger.cycle_at(tip, run.cycle)
            root = cycle.root
            if root.status is not Status.RUNNING or len(root.attempts) + 1 != run.attempt:
                raise Stale(f"the root planner of cycle {run.cycle} is not waiting for attempt {run.attempt}")
            attempts = [*root.attempts, _landed(run, result)]
            root = root.model_copy(update={"status": status, "attempts": attempts, "result": with_result(result, attempts)})
            return {store.cycle_path(run.cycle): store.dump_cycle(cycle.model_copy(update={"root": root}))}
        task = self._owner_at(tip, run)
        attempts = [*task.attempts, _landed(run, result)]
        task = (transition(task, status) if finished else task).model_copy(
            update={"attempts": attempts, "result": with_result(result, attempts)}
        )
        return {store.task_path(task.id): store.dump_task(task)}

    def _owner_at(self, tip: str, run: AgentRun) -> Task:
        """The run's task at the tip, which must still be waiting for exactly this attempt: a branch
        never lands twice, and never for a task that finished meanwhile."""
        task = self.ledger.task_at(tip, run.task_id)
        if task.status is not Status.RUNNING or len(task.attempts) + 1 != run.attempt:
            raise Stale(f"task {run.task_id} is {task.status} with {len(task.attempts)} attempts; not landing attempt {run.attempt}")
        return task


def _landed(run: AgentRun, result: Result | None) -> Attempt:
    return Attempt(
        number=run.attempt, cycle=run.cycle, outcome=Outcome.LANDED, seconds=round(run.seconds, 1),
        usage=result.usage if result else None,
    )


def _one_line(text: str) -> str:
    line = text.strip().splitlines()[0] if text.strip() else text
    return line if len(line) <= 100 else line[:97] + "..."
