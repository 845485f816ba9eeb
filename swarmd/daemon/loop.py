"""The daemon: cycle after cycle, a fresh root planner, then whatever the scheduler says can run, each
agent landing as soon as it exits; when nothing is runnable, the judge closes the cycle.

Signal handlers only set a flag and wake the loop; the loop acts. All state that matters is on the
integration branch, so the loop re-reads the tip after every burst of events instead of keeping its own
copy (what it parsed is kept by blob id, so a read parses only the files that changed).
"""

from __future__ import annotations

import signal
import threading
import time
from collections.abc import Callable
from contextlib import closing
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from queue import Empty, SimpleQueue
from types import FrameType
from typing import Any

from swarmd import prompts, store, yamlio
from swarmd.config import Config, Style
from swarmd.daemon import briefing, lock
from swarmd.daemon.bookkeeping import Ledger, Stale
from swarmd.daemon.integrate import Integrator
from swarmd.daemon.recovery import keep_branch, recover
from swarmd.daemon.runner import AgentRun, Exited, Runner, run_key
from swarmd.daemon.scheduler import decide
from swarmd.daemon.verify import Verified, Verifier
from swarmd.errors import GitError, UsageError, ValidationError
from swarmd.git.pool import WorktreePool
from swarmd.git.repo import Repo
from swarmd.git.worktree import start_merge
from swarmd.layout import GOAL_PATH
from swarmd.tasks import (
    RESERVED_ROOT,
    ROOT,
    Attempt,
    Cycle,
    Judgement,
    Kind,
    Outcome,
    Result,
    Role,
    Status,
    Task,
    Verdict,
)

STOP_GRACE_S = 5.0  # how long agents get to exit after SIGTERM when the daemon stops


@dataclass(frozen=True)
class Woken:
    """An event for the loop: a signal asked the daemon to stop."""

    signum: int


@dataclass
class Options:
    cycles: int | None = None
    max_workers: int | None = None
    say: Callable[[str], None] = print


@dataclass
class VerifyState:
    last: Verified | None = None
    red_since: float | None = None
    red_s: float = 0.0

    def red_seconds(self) -> float:
        return self.red_s + (time.monotonic() - self.red_since if self.red_since is not None else 0.0)


@dataclass
class Daemon:
    repo: Repo
    config: Config
    options: Options = field(default_factory=Options)

    def __post_init__(self) -> None:
        config = self.config
        self.events: SimpleQueue[object] = SimpleQueue()
        self.ledger = Ledger(self.repo, config.integration.branch, config.max_attempts)
        self.workers = self.options.max_workers or config.limits.workers
        self.pool = WorktreePool(self.repo, config.pool_size(self.workers), keep_ignored=config.pool.keep_ignored,
                                 on_error=self.say)
        commands = {role: getattr(config.agents, role.value).command for role in Role}
        self.runner = Runner(self.repo.swarm_dir, commands, self.events)
        self.integrator = Integrator(self.ledger, config.integration.style is Style.REPLAY, config.limits.depth)
        self.running: dict[str, AgentRun] = {}
        self.stopping = False
        self.verify = VerifyState()
        self.verifier: Verifier | None = None
        self.judge_failures = 0
        self.fix_tasks = 0  # created this cycle: a fix that does not fix is not retried forever
        self.on_ready: Callable[[], None] = lambda: None

    # -- the whole run ---------------------------------------------------------------------------

    def run(self) -> int:
        with lock.hold(self.repo.swarm_dir):
            branch = self.config.integration.branch
            checked_out = self.repo.checked_out_branches()
            if branch in checked_out:
                raise UsageError(
                    f"the integration branch {branch!r} is checked out in {checked_out[branch]}; landings would "
                    "move it under that checkout. Switch that worktree to another branch, then start again"
                )
            self.ledger.tip()
            self.runner.check_commands()
            previous = {sig: signal.signal(sig, self._on_signal) for sig in (signal.SIGINT, signal.SIGTERM)}
            self.on_ready()
            try:
                return self._cycles()
            finally:
                self._stop_agents()
                self.pool.close()
                if self.verifier:
                    self.verifier.close()
                for sig, handler in previous.items():
                    signal.signal(sig, handler)

    def _on_signal(self, signum: int, frame: FrameType | None) -> None:
        self.stopping = True
        self.events.put(Woken(signum))

    def _cycles(self) -> int:
        for line in recover(self.ledger, self.pool, self.repo.swarm_dir):
            self.say(f"recovered: {line}")
        tip = self.ledger.tip()
        warm = min(self.config.limits.planners + self.workers, self.pool.size)
        threading.Thread(target=self.pool.warm, args=(warm, tip), daemon=True, name="warm-pool").start()
        if self.config.verify.command:
            self.verifier = Verifier(self.config.verify.command, self.pool, self.config.agents.worker.timeout, self.events)
        closed = 0
        while not self.stopping:
            verdict = self._cycle()
            if verdict is None:
                break
            closed += 1
            if verdict is Verdict.STOP:
                self.say("the judge says stop")
                break
            if self.options.cycles is not None and closed >= self.options.cycles:
                self.say(f"ran {closed} cycle{'s' if closed > 1 else ''} as asked; `swarmd start` continues")
                break
        return 0

    # -- one cycle -------------------------------------------------------------------------------

    def _cycle(self) -> Verdict | None:
        goal = self._goal()
        cycle = self.ledger.open_cycle(goal)
        self.say(f"cycle {cycle.number} {'started' if not cycle.root.attempts and cycle.root.status is Status.TODO else 'continues'}")
        self.verify.red_s, self.judge_failures, self.fix_tasks = cycle.red_s, 0, 0
        if self.verify.red_since is not None:
            self.verify.red_since = time.monotonic()  # still red: this cycle counts from its own start
        while True:
            if self.stopping:
                return None
            tip = self.ledger.tip()
            tree = self.ledger.tree(tip)
            if tree.problems:
                raise ValidationError([f"the task tree at {self.config.integration.branch} is invalid:", *tree.problems])
            record = self.ledger.cycle_at(tip, cycle.number)
            if not any(run.role is Role.JUDGE for run in self.running.values()):
                agents = {run.task_id: run.role for run in self.running.values()}
                decision = decide(tree.tasks, record.root, agents, self.config.limits.planners, self.workers)
                if decision.block:
                    self.ledger.block(decision.block)
                    self.say(f"blocked {', '.join(decision.block)}: something they need failed")
                    continue
                if decision.start:
                    self._start(decision.start, tip, tree.tasks, record, goal)
                    continue
                if decision.judge and not (self.verifier and self.verifier.busy):
                    self._start_judge(record, tree.tasks, goal)  # after the last check of the tip, if one runs
            # Everything that happened meanwhile, before the tree is read again: agents that finish
            # together land one after the other without a read and a decision between each two.
            event: object | None = self._next_event()
            while event is not None:
                verdict = self._handle(event)
                if verdict is not None:
                    return verdict
                event = self._pending_event()

    def _goal(self) -> str:
        path = self.repo.workdir / GOAL_PATH
        try:
            return path.read_text(encoding="utf-8")
        except FileNotFoundError:
            raise UsageError(f"{GOAL_PATH}: not found in {self.repo.workdir}; write the goal there (`swarmd init` makes one)") from None

    def _next_event(self) -> object:
        while True:
            deadlines = [run.deadline for run in self.running.values() if not run.timed_out and run.ended is None]
            timeout = max(0.0, min(deadlines) - time.monotonic()) if deadlines else None
            try:
                return self.events.get(timeout=timeout)
            except Empty:
                now = time.monotonic()
                for run in self.running.values():
                    if not run.timed_out and run.ended is None and now >= run.deadline:
                        run.timed_out = True
                        self.say(f"{run.role.value} {run.task_id} ran past its timeout; stopping it")
                        self.runner.kill(run)

    def _pending_event(self) -> object | None:
        try:
            return self.events.get_nowait()
        except Empty:
            return None

    def _handle(self, event: object) -> Verdict | None:
        if isinstance(event, Exited):
            del self.running[event.run.key]
            if event.run.role is Role.JUDGE:
                return self._judged(event.run)
            self._finished(event.run)
        elif isinstance(event, Verified):
            self._verified(event)
        return None

    # -- starting agents -------------------------------------------------------------------------

    def _start(self, starts: list[tuple[Role, str]], tip: str, tasks: dict[str, Task], record: Cycle, goal: str) -> None:
        """Start a batch of agents at the tip they were chosen at, then mark them all running in one
        commit. In this order a pooled worktree moves only as far as the landings since it was last
        used; marking them running first would rewrite the task file of every agent in the batch in
        every one of their worktrees (at 100 agents, 10,000 files). A crash before that commit leaves
        agents whose tasks are still todo: the next start stops them and keeps their branches."""
        attempts = {
            task_id: 1 + len(record.root.attempts if task_id == ROOT else tasks[task_id].attempts)
            for _, task_id in starts
        }
        branches: dict[str, tuple[Role, str]] = {}
        for role, task_id in starts:
            branch = f"swarm/root/{record.number}" if task_id == ROOT else f"swarm/task/{task_id}"
            keep_branch(self.ledger, task_id, record.number, attempts[task_id] - 1, branch, "earlier")
            branches[branch] = (role, task_id)
        last = self._last_closed(tip, record.number)
        with closing(self.pool.acquire_many(list(branches), tip)) as ready:
            for worktree in ready:
                role, task_id = branches[worktree.branch]
                run = AgentRun(role, task_id, record.number, attempts[task_id], worktree,
                               self._run_dir(role, task_id, record.number, attempts[task_id]), base=tip)
                if role is Role.PLANNER:
                    context = briefing.planner(goal, record, last, tasks, task_id, self.config.limits.depth)
                else:
                    context = briefing.worker(goal, record, last, tasks[task_id], run.attempt, ())
                self._launch(run, context)
        self.ledger.start(attempts.items(), record.number)

    def _start_judge(self, record: Cycle, tasks: dict[str, Task], goal: str) -> None:
        tip = self.ledger.tip()
        self.repo.delete_branch(f"swarm/judge/{record.number}")
        run = self._new_run(Role.JUDGE, ROOT, record.number, self.judge_failures + 1, f"swarm/judge/{record.number}", tip)
        last = self.verify.last
        verify = None if last is None else {"command": " ".join(last.command), "passed": last.passed,
                                            "commit": last.commit, "output": last.output}
        self._launch(run, briefing.judge(goal, record, tasks, verify))

    def _new_run(self, role: Role, task_id: str, cycle: int, attempt: int, branch: str, tip: str) -> AgentRun:
        worktree = self.pool.acquire(branch, tip)
        return AgentRun(role, task_id, cycle, attempt, worktree, self._run_dir(role, task_id, cycle, attempt), base=tip)

    def _run_dir(self, role: Role, task_id: str, cycle: int, attempt: int) -> Path:
        return self.repo.swarm_dir / "runs" / run_key(role.value, task_id) / f"c{cycle}-a{attempt}"

    def _launch(self, run: AgentRun, context: dict[str, Any]) -> None:
        try:
            prompt = prompts.render(run.role.value, self.repo.workdir, context)
            self.runner.start(run, prompt, getattr(self.config.agents, run.role.value).timeout)
        except BaseException:
            self.pool.release(run.worktree)
            raise
        self.running[run.key] = run
        what = f"{run.role.value} {run.task_id}" + (" (resolving a conflict)" if run.conflict else "")
        self.say(f"{what} started, attempt {run.attempt}")

    # -- agents that finished --------------------------------------------------------------------

    def _finished(self, run: AgentRun) -> None:
        name = f"{run.role.value} {run.task_id}"
        self.say(f"{name} exited with status {run.exit_code} after {run.seconds:.1f} s")
        outcome, reason = Outcome.FAILED, None
        if run.commit_error:
            reason = f"its worktree could not be committed: {run.commit_error}"
        result, problem = read_result(run.result_file, Result)
        if run.timed_out:
            outcome = Outcome.TIMEOUT
            timeout = getattr(self.config.agents, run.role.value).timeout
            reason = f"ran past agents.{run.role.value}.timeout ({timeout:g} s) and was killed"
        elif run.exit_code != 0:
            reason = f"exited with status {run.exit_code}; its log is {run.log_file}"
        elif reason is None and problem:
            reason = problem
        elif reason is None:
            head = self.repo.branch_tip(run.worktree.branch)
            assert head is not None
            try:
                landing = self.integrator.land(run, head, result)
            except Stale as exc:
                self.say(f"{name}: not landed: {exc}")
                self._put_away(run, keep="stale")
                return
            if landing.commit:
                added = f", added {', '.join(landing.added)}" if landing.added else ""
                self.say(f"landed {run.task_id} at {landing.commit[:10]}{added}")
                self._put_away(run)  # its branch goes: its commits are in the landing now
                if self.verifier:
                    self.verifier.request(landing.commit)
                return
            outcome, reason = Outcome.REFUSED, landing.refused
            if landing.conflicts and run.role is Role.PLANNER:
                reason = f"its task files conflicted with the tip in {', '.join(landing.conflicts)}; it plans again from the new tip"
            elif landing.conflicts and self._conflicts_in_a_row(run) >= self.config.max_attempts:
                reason = f"it kept conflicting ({self.config.max_attempts} times in a row), lately in {', '.join(landing.conflicts)}"
            elif landing.conflicts:
                self._conflict(run, result, landing.conflicts, landing.refused)
                return
        attempt = Attempt(number=run.attempt, cycle=run.cycle, outcome=outcome, reason=reason,
                          seconds=round(run.seconds, 1), usage=result.usage if result else None)
        try:
            status = self.ledger.record(run.task_id, run.cycle, attempt, f"{run.task_id}: attempt {run.attempt} {outcome}")
        except Stale as exc:
            self.say(f"{name}: {exc}")
            status = None
        self.say(f"{name}: attempt {run.attempt} {outcome}: {reason}")
        if status is Status.FAILED:
            self.say(f"{run.task_id} failed: its attempts are spent")
        self._put_away(run, keep="failed")

    def _conflict(self, run: AgentRun, result: Result | None, conflicts: tuple[str, ...], markers: str | None) -> None:
        """Merge the tip into the worker's branch in its worktree, markers and all, and run it again.
        `markers` (why the landing was refused) when the branch itself holds conflict markers: the
        worker cleans them up the same way, after a merge of the tip that may well be clean."""
        tip = self.ledger.tip()
        try:
            merging = start_merge(run.worktree.path, tip)
            paths = list(dict.fromkeys([*merging, *conflicts]))
        except GitError as exc:
            self.say(f"{run.task_id}: could not merge the tip into its branch: {exc}")
            attempt = Attempt(number=run.attempt, cycle=run.cycle, outcome=Outcome.FAILED,
                              reason=f"conflicts in {', '.join(conflicts)}, and the merge for them failed: {exc}",
                              seconds=round(run.seconds, 1), usage=result.usage if result else None)
            self.ledger.record(run.task_id, run.cycle, attempt, f"{run.task_id}: attempt {run.attempt} failed")
            self._put_away(run, keep="failed")
            return
        attempt = Attempt(number=run.attempt, cycle=run.cycle, outcome=Outcome.CONFLICT,
                          reason=markers or "conflicts in " + ", ".join(paths), seconds=round(run.seconds, 1),
                          usage=result.usage if result else None)
        self.ledger.record(run.task_id, run.cycle, attempt, f"{run.task_id}: conflict in {', '.join(paths)}")
        self.say(f"conflict on {run.task_id} in {', '.join(paths)}: the worker resolves it")
        self.runner.forget(run)
        task = self.ledger.task_at(self.ledger.tip(), run.task_id)
        rerun = AgentRun(run.role, run.task_id, run.cycle, run.attempt + 1, run.worktree,
                         run.run_dir.parent / f"c{run.cycle}-a{run.attempt + 1}", base=tip, conflict=tuple(paths))
        tip = self.ledger.tip()
        cycle = self.ledger.cycle_at(tip, run.cycle)
        last = self._last_closed(tip, run.cycle)
        context = briefing.worker(self._goal(), cycle, last, task, rerun.attempt, rerun.conflict, bool(merging))
        self._launch(rerun, context)

    def _conflicts_in_a_row(self, run: AgentRun) -> int:
        attempts = self.ledger.task_at(self.ledger.tip(), run.task_id).attempts
        count = 0
        for attempt in reversed(attempts):
            if attempt.outcome is not Outcome.CONFLICT:
                break
            count += 1
        return count

    def _put_away(self, run: AgentRun, keep: str | None = None) -> None:
        """The worktree back to the pool (released on the pool's own thread, at the head its branch has
        now), then the branch kept as `swarm/<keep>/...`, or without `keep` (it landed) deleted."""
        head = self.repo.branch_tip(run.worktree.branch)
        if head is None:  # the agent deleted its own branch: git finds out where the worktree is
            self.pool.release(run.worktree)
        else:
            self.pool.give_back(run.worktree, head, committed=head == run.clean_at)
        if keep:
            keep_branch(self.ledger, run.task_id, run.cycle, run.attempt, run.worktree.branch, keep)
        else:
            self.repo.delete_branch(run.worktree.branch)
        self.runner.forget(run)

    def _judged(self, run: AgentRun) -> Verdict | None:
        self.say(f"judge exited with status {run.exit_code} after {run.seconds:.1f} s")
        judgement, problem = read_result(run.result_file, Judgement)
        self.pool.release(run.worktree)
        self.repo.delete_branch(run.worktree.branch)
        self.runner.forget(run)
        if run.timed_out or run.exit_code != 0 or judgement is None:
            why = "ran past its timeout" if run.timed_out else (
                f"exited with status {run.exit_code}" if run.exit_code else problem or "wrote no verdict")
            self.judge_failures += 1
            self.say(f"the judge failed: {why}")
            if self.judge_failures < self.config.max_attempts:
                return None
            judgement = Judgement(verdict=Verdict.STOP, summary=f"The judge failed {self.judge_failures} times ({why}); stopping.")
        verdict_fields = {"verdict": judgement.verdict, "summary": judgement.summary, "notes": judgement.notes}
        try:
            self.ledger.close_cycle(run.cycle, verdict_fields, judgement.usage, self.verify.red_seconds())
        except Stale as exc:
            self.say(f"the judge's verdict was not recorded: {exc}")
        self.say(f"closed cycle {run.cycle}: {judgement.verdict}: {judgement.summary}")
        return judgement.verdict

    # -- verify ------------------------------------------------------------------------------------

    def _verified(self, result: Verified) -> None:
        if result.problem:
            self.say(f"verify could not check {result.commit[:10]}: {result.problem}")
            return
        self.verify.last = result
        if result.passed:
            if self.verify.red_since is not None:
                self.verify.red_s += time.monotonic() - self.verify.red_since
                self.verify.red_since = None
                self.say(f"the tip is green again at {result.commit[:10]}")
            return
        if self.verify.red_since is None:
            self.verify.red_since = time.monotonic()
        self.say(f"the tip is red at {result.commit[:10]}: `{' '.join(result.command)}` failed")
        if self.fix_tasks >= self.config.max_attempts:
            self.say(f"{self.fix_tasks} fix tasks this cycle did not make it green; the judge will see it")
            return
        created = self.ledger.commit(lambda tip: fix_task(self.repo, tip, result), "verify failed: a task to fix the tip")
        if created.commit:
            self.fix_tasks += 1
            self.say("created a task to fix it")

    # -- stopping ----------------------------------------------------------------------------------

    def _stop_agents(self) -> None:
        """Ask every agent to stop, give them a few seconds, then kill what is left; each attempt goes
        back to todo (it does not count), and what the agents committed stays on their branches."""
        if not self.running:
            return
        self.say(f"stopping {len(self.running)} agent{'s' if len(self.running) > 1 else ''}")
        for run in self.running.values():
            self.runner.kill(run, signal.SIGTERM)
        deadline = time.monotonic() + STOP_GRACE_S
        while self.running:
            left = deadline - time.monotonic()
            if left <= 0:
                for run in self.running.values():
                    self.runner.kill(run)
                left = STOP_GRACE_S
                deadline = time.monotonic() + left
            try:
                event = self.events.get(timeout=left)
            except Empty:
                continue
            if isinstance(event, Exited):
                run = self.running.pop(event.run.key)
                self._stopped(run)

    def _stopped(self, run: AgentRun) -> None:
        if run.role is not Role.JUDGE:  # what it left is committed already (Runner)
            attempt = Attempt(number=run.attempt, cycle=run.cycle, outcome=Outcome.CRASHED, reason="swarmd was stopped")
            try:
                self.ledger.record(run.task_id, run.cycle, attempt, f"{run.task_id}: stopped")
            except Stale:
                pass
            self._put_away(run, keep="stopped")
        else:
            self._put_away(run)

    # -- small things ------------------------------------------------------------------------------

    def _last_closed(self, tip: str, number: int) -> Cycle | None:
        if number <= 1:
            return None
        data = self.repo.read_file(tip, store.cycle_path(number - 1))
        return store.parse_cycle(data, store.cycle_path(number - 1)) if data else None

    def say(self, text: str) -> None:
        self.options.say(f"{datetime.now():%H:%M:%S} {text}")


def read_result(path: Path, model: type[Any]) -> tuple[Any, str | None]:
    """An agent's result file: (the model, None), (None, None) when absent, or (None, why it is bad)."""
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return None, (f"it wrote no result to {path}" if model is Judgement else None)
    try:
        data = yamlio.load(text, str(path))
        return (yamlio.parse(model, data, str(path)), None) if data is not None else (None, None)
    except ValidationError as exc:
        return None, "; ".join(exc.problems)


def fix_task(repo: Repo, tip: str, result: Verified) -> dict[str, bytes | None] | None:
    """A work task under swarmd's own id 0 to fix a red tip, unless one is already open."""
    tasks = store.read_tree(repo, tip).tasks
    own = [t for t in tasks.values() if t.parent == RESERVED_ROOT]
    if any(t.status in (Status.TODO, Status.RUNNING) for t in own):
        return None
    number = max((int(t.id.rpartition(".")[2]) for t in own), default=0) + 1
    command = " ".join(result.command)
    task = Task(
        id=f"{RESERVED_ROOT}.{number}", title=f"Make `{command}` pass again", kind=Kind.WORK, parent=RESERVED_ROOT,
        description=(f"`{command}` fails at the integration tip ({result.commit[:10]}). Find what broke it and fix it "
                     f"forward.\n\nIts output ends with:\n\n{result.output}\n"),
        acceptance=f"`{command}` passes.",
    )
    return {store.task_path(task.id): store.dump_task(task)}
