"""Starting agents and putting them away: a batch of planners and workers at the tip they were chosen
at, the judge, a worker's conflict re-run; and, when an agent is done with, its worktree back to the pool
and its branch deleted (it landed) or kept under `swarm/<why>/...`."""

from __future__ import annotations

from collections.abc import Callable
from contextlib import closing
from pathlib import Path
from typing import Any

from swarmd import prompts
from swarmd.config import Config
from swarmd.daemon import briefing
from swarmd.daemon.bookkeeping import Ledger, Stale
from swarmd.daemon.branches import agent_branch, judge_branch, keep_branch
from swarmd.daemon.runner import AgentRun, Runner, run_key
from swarmd.git.pool import WorktreePool
from swarmd.git.repo import Repo
from swarmd.tasks import ROOT, Cycle, Role, Task


class Launcher:
    def __init__(
        self, repo: Repo, config: Config, ledger: Ledger, pool: WorktreePool, runner: Runner,
        running: dict[str, AgentRun], say: Callable[[str], None],
    ) -> None:
        self.repo = repo
        self.config = config
        self.ledger = ledger
        self.pool = pool
        self.runner = runner
        self.running = running  # the daemon's: every agent started here is in it until it is handled
        self.say = say

    def start_batch(self, starts: list[tuple[Role, str]], tip: str, tasks: dict[str, Task], record: Cycle, goal: str) -> None:
        """Start a batch of agents at the tip they were chosen at, then mark them all running in one
        commit. In this order a pooled worktree moves only as far as the landings since it was last
        used; marking them running first would rewrite the task file of every agent in the batch in
        every one of their worktrees (at 100 agents, 10,000 files). A crash before that commit leaves
        agents whose tasks are still todo: the next start stops them and keeps their branches (ADR 0016)."""
        attempts = {
            task_id: 1 + len(record.root.attempts if task_id == ROOT else tasks[task_id].attempts)
            for _, task_id in starts
        }
        branches: dict[str, tuple[Role, str]] = {}
        for role, task_id in starts:
            branch = agent_branch(task_id, record.number)
            keep_branch(self.repo, task_id, record.number, attempts[task_id] - 1, branch, "earlier")
            branches[branch] = (role, task_id)
        last = self.last_closed(tip, record.number)
        with closing(self.pool.acquire_many(list(branches), tip)) as ready:
            for worktree in ready:
                role, task_id = branches[worktree.branch]
                run = AgentRun(role, task_id, record.number, attempts[task_id], worktree,
                               self.run_dir(role, task_id, record.number, attempts[task_id]), base=tip)
                if role is Role.PLANNER:
                    context = briefing.planner(goal, record, last, tasks, task_id, self.config.limits.depth)
                else:
                    context = briefing.worker(goal, record, last, tasks[task_id], run.attempt, ())
                self._launch(run, context)
        self.ledger.start(attempts.items(), record.number)

    def start_judge(self, record: Cycle, tasks: dict[str, Task], goal: str, attempt: int, verify: dict[str, Any] | None,
                    budget: str | None = None) -> None:
        tip = self.ledger.tip()
        branch = judge_branch(record.number)
        self.repo.delete_branch(branch)
        worktree = self.pool.acquire(branch, tip)
        run = AgentRun(Role.JUDGE, ROOT, record.number, attempt, worktree,
                       self.run_dir(Role.JUDGE, ROOT, record.number, attempt), base=tip)
        self._launch(run, briefing.judge(goal, record, tasks, verify, budget))

    def rerun_after_conflict(self, run: AgentRun, merged_at: str, paths: tuple[str, ...], markers_only: bool, goal: str) -> None:
        """The same worker again, in the same worktree, where the tip `merged_at` was merged into its
        branch: with the conflict markers to resolve, or (`markers_only`) a clean merge and the markers
        its own change holds."""
        self.runner.forget(run)
        tip = self.ledger.tip()  # the conflict is recorded: the task now waits for the next attempt
        task = self.ledger.task_at(tip, run.task_id)
        rerun = AgentRun(run.role, run.task_id, run.cycle, run.attempt + 1, run.worktree,
                         self.run_dir(run.role, run.task_id, run.cycle, run.attempt + 1), base=merged_at, conflict=paths)
        context = briefing.worker(goal, self.ledger.cycle_at(tip, run.cycle), self.last_closed(tip, run.cycle), task,
                                  rerun.attempt, rerun.conflict, not markers_only)
        self._launch(rerun, context, release_on_failure=False)  # the worktree is still `run`'s to put away

    def put_away(self, run: AgentRun, keep: str | None = None) -> None:
        """The worktree back to the pool (released on the pool's own thread, at the head its branch has
        now), then the branch kept as `swarm/<keep>/...`, or without `keep` (it landed) deleted. Once
        per run: a second call (after an error half way through the first) does nothing."""
        if run.away:
            return
        run.away = True
        head = self.repo.branch_tip(run.worktree.branch)
        if head is None or run.moved:  # the agent deleted or left its branch: git finds out where it is
            self.pool.release(run.worktree)
        else:
            self.pool.give_back(run.worktree, head, committed=head == run.clean_at)
        if keep:
            keep_branch(self.repo, run.task_id, run.cycle, run.attempt, run.worktree.branch, keep)
        else:
            self.repo.delete_branch(run.worktree.branch)
        self.runner.forget(run)

    def run_dir(self, role: Role, task_id: str, cycle: int, attempt: int) -> Path:
        return self.repo.swarm_dir / "runs" / run_key(role.value, task_id) / f"c{cycle}-a{attempt}"

    def last_closed(self, tip: str, number: int) -> Cycle | None:
        try:
            return self.ledger.cycle_at(tip, number - 1) if number > 1 else None
        except Stale:
            return None

    def _launch(self, run: AgentRun, context: dict[str, Any], release_on_failure: bool = True) -> None:
        try:
            prompt = prompts.render(run.role.value, self.repo.workdir, context)
            self.runner.start(run, prompt, getattr(self.config.agents, run.role.value).timeout)
        except BaseException:
            if release_on_failure:
                self.pool.release(run.worktree)
            raise
        self.running[run.key] = run
        what = f"{run.role.value} {run.task_id}" + (" (resolving a conflict)" if run.conflict else "")
        self.say(f"{what} started, attempt {run.attempt}")
