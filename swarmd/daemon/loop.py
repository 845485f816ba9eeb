"""The daemon: cycle after cycle, a fresh root planner, then whatever the scheduler says can run, each
agent landing as soon as it exits; when nothing is runnable, the judge closes the cycle.

Signal handlers only set a flag and wake the loop; the loop acts. All state that matters is on the
integration branch, so the loop re-reads the tip after every burst of events instead of keeping its own
copy (what it parsed is kept by blob id, so a read parses only the files that changed).
"""

from __future__ import annotations

import logging
import os
import signal
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from datetime import datetime
from queue import Empty, SimpleQueue
from types import FrameType

from swarmd import logs, yamlio
from swarmd.config import Config, Style
from swarmd.agents.contract import CONFIG_EXIT
from swarmd.daemon import agent_env, lock, paused_roles, preflight
from swarmd.daemon.bookkeeping import Ledger, Rewound, Stale
from swarmd.daemon.exits import Exits, last_line, unexpected
from swarmd.daemon.integrate import Integrator
from swarmd.daemon.launch import Launcher
from swarmd.daemon.metering import Metering
from swarmd.daemon.recovery import recover
from swarmd.daemon.red_tip import RedTip
from swarmd.daemon.results import BadResult, read_result
from swarmd.daemon.runner import AgentRun, Exited, Runner
from swarmd.daemon.scheduler import decide
from swarmd.daemon.verify import Verified, Verifier
from swarmd.errors import SwarmError, UsageError, ValidationError
from swarmd.gateway.server import GatewayFailed, Refused
from swarmd.git.pool import WorktreePool
from swarmd.git.repo import Repo
from swarmd.layout import ERRORS_LOG, GOAL_PATH, SWARM_DIR
from swarmd.secrets import Redactor, keep_environment_private
from swarmd.tasks import ROOT, Attempt, Judgement, Outcome, Result, Role, Status, Verdict

log = logging.getLogger(__name__)

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
class Daemon:
    repo: Repo
    config: Config
    options: Options = field(default_factory=Options)

    def __post_init__(self) -> None:
        config = self.config
        key_names = {getattr(config.agents, role.value).api_key_env for role in Role}
        self.redact = Redactor(os.environ, {name for name in key_names if name})  # first: say() uses it
        self.events: SimpleQueue[object] = SimpleQueue()
        self.ledger = Ledger(self.repo, config.integration.branch, config.max_attempts)
        self.workers = self.options.max_workers or config.limits.workers
        self.pool = WorktreePool(self.repo, config.pool_size(self.workers), keep_ignored=config.pool.keep_ignored,
                                 on_error=self.say)
        agents = {role: getattr(config.agents, role.value) for role in Role}
        overrides = str(self.repo.workdir / SWARM_DIR / "prompts")  # for the built-in agent's system prompt
        settings = {role: {**agent.settings(), "depth": config.limits.depth, "prompts": overrides}
                    for role, agent in agents.items()}
        self.metering = Metering(config, self.repo.swarm_dir, self.events.put)
        self.runner = Runner(
            self.repo.swarm_dir, {role: agent_env.command(agent) for role, agent in agents.items()}, self.events,
            config.integration.branch, settings, {role: agent_env.environment(agent, os.environ) for role, agent in agents.items()},
            lambda run: self.metering.admit(run.role, run.task_id, run.cycle, run.attempt), self.metering.release,
            self.redact)
        self.running: dict[str, AgentRun] = {}
        self.launcher = Launcher(self.repo, config, self.ledger, self.pool, self.runner, self.running, self.say)
        integrator = Integrator(self.ledger, config.integration.style is Style.REPLAY, config.limits.depth)
        self.paused: dict[Role, str] = {}  # roles whose agent said they are misconfigured: none start
        self.exits = Exits(config, self.ledger, integrator, self.launcher, self._goal, self._landed, self.say,
                           self._misconfigured, self.paused.get,
                           lambda run: self.metering.spent(run.role, run.task_id, run.cycle, run.attempt), self.redact)
        self.run_budget: str | None = None  # the run's budget is spent: why
        self.stopping = False
        self.tip_health = RedTip(self.repo, self.ledger, config.max_attempts, self.say)
        self.verifier: Verifier | None = None
        self.judge_failures = 0
        self.on_ready: Callable[[], None] = lambda: None

    # -- the whole run ---------------------------------------------------------------------------

    def run(self) -> int:
        with lock.hold(self.repo.swarm_dir), logs.errors_to_file(self.repo.swarm_dir):
            problems = preflight.problems(self.repo, self.config)
            if problems:  # refused before anything is written
                raise ValidationError(problems)
            paused_roles.clear(self.repo.swarm_dir)  # this start reads the config anew
            self.ledger.check_tip()
            keep_environment_private()
            self.metering.start()
            previous = {sig: signal.signal(sig, self._on_signal) for sig in (signal.SIGINT, signal.SIGTERM)}
            self.on_ready()
            try:
                return self._cycles()
            finally:
                self._stop_agents()
                self.metering.stop()
                self.pool.close()
                if self.verifier:
                    self.verifier.close()
                for sig, handler in previous.items():
                    signal.signal(sig, handler)

    def _on_signal(self, signum: int, frame: FrameType | None) -> None:
        self.stopping = True
        self.events.put(Woken(signum))

    def _cycles(self) -> int:
        for line in recover(self.ledger, self.pool, self.repo.swarm_dir, self.metering.spent):
            self.say(f"recovered: {line}")
        tip = self.ledger.tip()
        warm = min(self.config.limits.planners + self.workers, self.pool.size)
        threading.Thread(target=self._warm, args=(warm, tip), daemon=True, name="warm-pool").start()
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
        if self.run_budget:
            raise UsageError(f"stopped: the run's budget is spent ({self.run_budget}). Raise budget.run in "
                             ".swarm/config.yaml to go on; the tasks not done wait as todo")
        return 0

    def _warm(self, count: int, tip: str) -> None:
        try:
            self.pool.warm(count, tip)
        except Exception as exc:  # agents still get worktrees: acquire makes what is missing
            log.exception("warming the worktree pool")
            self.say(f"could not warm the worktree pool ({exc}); traceback in .git/swarm/{ERRORS_LOG}")

    # -- one cycle -------------------------------------------------------------------------------

    def _cycle(self) -> Verdict | None:
        goal = self._goal()
        cycle = self.ledger.open_cycle(goal)
        self.say(f"cycle {cycle.number} {'started' if not cycle.root.attempts and cycle.root.status is Status.TODO else 'continues'}")
        self.tip_health.new_cycle(cycle.red_s)
        self.judge_failures = 0
        said_spent = False
        while True:
            if self.stopping:
                return None
            if why := self.metering.spend.run_spent():
                self.run_budget, self.stopping = why, True
                self.say(f"the run's budget is spent ({why}): starting nothing more, stopping")
                return None
            tip = self.ledger.tip()
            self.ledger.guard(tip)  # a batch must not start from a tip someone else put there
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
                starts = [(role, task_id) for role, task_id in decision.start if role not in self.paused]
                spent = self.metering.spend.cycle_spent(cycle.number)
                if spent:  # no more agents in this cycle: when the last has ended, the judge closes it
                    if not said_spent:
                        said_spent = True
                        self.say(f"cycle {cycle.number}'s budget is spent ({spent}): no more agents start in it")
                    starts, decision = [], replace(decision, start=[], judge=not self.running)
                if starts:
                    self.launcher.start_batch(starts, tip, tree.tasks, record, goal)
                    continue
                # A paused role's work is not finished work: the cycle waits for it instead of being judged.
                held = len(starts) < len(decision.start) or (decision.judge and Role.JUDGE in self.paused)
                if held and not self.running and not (self.verifier and self.verifier.busy):
                    raise UsageError("nothing else can run: " + "; ".join(
                        f"the {role.value} role is paused ({why})" for role, why in self.paused.items())
                        + ". Fix .swarm/config.yaml and start swarmd again; the tasks are waiting as todo")
                if decision.judge and not held and not (self.verifier and self.verifier.busy):
                    verify = self.tip_health.for_judge()  # after the last check of the tip, if one runs
                    budget = f"cycle {cycle.number}'s budget is spent ({spent})" if spent else None
                    self.launcher.start_judge(record, tree.tasks, goal, self.judge_failures + 1, verify, budget)
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
            return yamlio.decode(path.read_bytes(), GOAL_PATH)
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
                        self.say(f"{run.role.value} {run.task_id} " + (
                            "did not hand off after its budget was spent" if run.over_budget else "ran past its timeout")
                            + "; stopping it")
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
                return self._judged_safely(event.run)
            self.exits.handle(event.run)
        elif isinstance(event, Verified):
            self.tip_health.verified(event)
        elif isinstance(event, Refused):
            self._refused(event)
        elif isinstance(event, GatewayFailed):
            raise SwarmError(f"the gateway stopped ({event.reason}), so no agent can reach its model; the "
                             f"traceback is in .git/swarm/{ERRORS_LOG}. Start swarmd again")
        return None

    def _refused(self, refused: Refused) -> None:
        """The gateway refused an agent a call, its budget spent: it gets `budget.grace` seconds to hand
        off (the built-in agent does at once), then it is stopped like one past its timeout."""
        run = next((r for r in self.running.values() if r.token == refused.badge.token), None)
        if run is None or run.over_budget is not None:
            return
        run.over_budget = (refused.scope, refused.reason)
        grace = self.config.budget.grace
        run.deadline = min(run.deadline, time.monotonic() + grace)
        self.say(f"{run.role.value} {run.task_id}: {refused.reason}; it has {grace:g} s to hand off")

    def _misconfigured(self, role: Role, reason: str) -> None:
        """An agent said its role cannot run as configured: start no more of that role, say why once."""
        if role in self.paused:
            return
        self.paused[role] = reason
        paused_roles.remember(self.repo.swarm_dir, {r.value: why for r, why in self.paused.items()})
        self.say(f"the {role.value} role is paused: {reason}. No {role.value} starts until you fix "
                 f"agents.{role.value} in .swarm/config.yaml and start swarmd again; the other roles go on")

    def _landed(self, commit: str) -> None:
        if self.verifier:
            self.verifier.request(commit)

    # -- the judge -------------------------------------------------------------------------------

    def _judged_safely(self, run: AgentRun) -> Verdict | None:
        """As for planners and workers (ADR 0020): an unexpected error costs this judge run, which runs again."""
        try:
            return self._judged(run)
        except Rewound:
            raise
        except Exception as exc:
            log.exception("handling the judge's exit")
            self.judge_failures += 1
            self.say(f"the judge's run failed: {unexpected(exc)}")
            if self.judge_failures < self.config.max_attempts:
                return None
            self.say("stopping: the cycle stays open, and the next `swarmd start` runs its judge again")
            return Verdict.STOP

    def _judged(self, run: AgentRun) -> Verdict | None:
        self.say(f"judge exited with status {run.exit_code} after {run.seconds:.1f} s")
        try:
            judgement, problem = read_result(run.result_file, Judgement), None
        except BadResult as exc:
            judgement, problem = None, str(exc)
        judgement = judgement and self.redact.model(judgement)
        self.launcher.put_away(run)
        if run.exit_code == CONFIG_EXIT and not run.timed_out:
            self._misconfigured(Role.JUDGE, f"its role is misconfigured: {self.redact(last_line(run.log_file))}")
            return None
        if run.timed_out or run.exit_code != 0 or judgement is None:
            why = "ran past its timeout" if run.timed_out else (
                f"exited with status {run.exit_code} ({self.redact(last_line(run.log_file))})" if run.exit_code
                else problem or f"wrote no verdict to {run.result_file}")
            self.judge_failures += 1
            self.say(f"the judge failed: {why}")
            if self.judge_failures < self.config.max_attempts:
                return None
            judgement = Judgement(verdict=Verdict.STOP, summary=f"The judge failed {self.judge_failures} times ({why}); stopping.")
        verdict_fields = {"verdict": judgement.verdict, "summary": judgement.summary, "notes": judgement.notes}
        try:
            spent = self.metering.spent_by_task(Role.JUDGE, ROOT, run.cycle) or judgement.usage  # failed runs too
            self.ledger.close_cycle(run.cycle, verdict_fields, spent, self.tip_health.red_seconds())
        except Stale as exc:
            self.say(f"the judge's verdict was not recorded: {exc}")
        self.say(f"closed cycle {run.cycle}: {judgement.verdict}: {judgement.summary}")
        return judgement.verdict

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
            elif isinstance(event, Refused):  # its budget spent as it was being stopped: said so in its record
                self._refused(event)

    def _stopped(self, run: AgentRun) -> None:
        if run.role is not Role.JUDGE:  # what it left is committed already (Runner)
            spent = self.metering.spent(run.role, run.task_id, run.cycle, run.attempt)
            if spent is None:
                try:  # what it spent, if it said
                    spent = getattr(read_result(run.result_file, Result), "usage", None)
                except BadResult:
                    spent = None
            outcome, reason = Outcome.CRASHED, "swarmd was stopped"
            if run.over_budget:
                outcome, reason = Outcome.BUDGET, run.over_budget[1]
            attempt = Attempt(number=run.attempt, cycle=run.cycle, outcome=outcome, reason=reason, usage=spent)
            try:
                self.ledger.record(run.task_id, run.cycle, attempt, f"{run.task_id}: stopped", final=run.fails_task)
            except (Stale, Rewound):
                pass  # landed or recorded already; or the branch was rewound: the next start sorts it out
            self.launcher.put_away(run, keep="stopped")
        else:
            self.launcher.put_away(run)

    # -- small things ------------------------------------------------------------------------------

    def say(self, text: str) -> None:
        self.options.say(f"{datetime.now():%H:%M:%S} {self.redact(text)}")
