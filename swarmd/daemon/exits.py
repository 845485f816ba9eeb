"""An agent's exit: what became of its attempt is decided once (`judge`, over plain facts and one try
at landing), then carried out in one place (`Exits.carry_out`). An unexpected error on the way fails
that attempt, with the traceback in `.git/swarm/errors.log`; the daemon goes on."""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from swarmd import failpoints
from swarmd.agents.contract import CONFIG_EXIT
from swarmd.config import Config
from swarmd.daemon.bookkeeping import Ledger, Rewound, Stale
from swarmd.daemon.integrate import Integrator
from swarmd.daemon.launch import Launcher
from swarmd.daemon.outcomes import AttemptOutcome, Conflicted, Landed, NotLanded, Superseded
from swarmd.daemon.results import BadResult, read_result
from swarmd.daemon.runner import AgentRun
from swarmd.errors import GitError
from swarmd.git.worktree import start_merge
from swarmd.layout import ERRORS_LOG
from swarmd.secrets import Redactor
from swarmd.tasks import Attempt, Outcome, Result, Role, Status, Usage

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class ExitFacts:
    """What is known of an attempt once its agent exited, before anything is tried."""

    role: Role
    branch: str
    exit_code: int | None
    timed_out: bool
    timeout: float
    log_file: Path
    moved: str | None = None  # where HEAD went, if the agent left its branch
    over_budget: str | None = None  # the gateway refused it a call because a budget is spent: why
    commit_error: str | None = None  # what it left could not be committed
    bad_result: str | None = None  # why its result file cannot be used
    said: str = ""  # the last line of its log: why it failed, in its own words
    conflicts_in_a_row: int = 0  # its task's latest attempts that ended in a conflict
    max_attempts: int = 3


def judge(facts: ExitFacts, land: Callable[[], AttemptOutcome]) -> AttemptOutcome:
    """What became of the attempt. `land` is tried only when nothing known up front rules it out."""
    if facts.over_budget:  # whatever it did after (stopped, killed, or handed off cleanly)
        return NotLanded(Outcome.BUDGET, facts.over_budget)
    if facts.timed_out:
        return NotLanded(Outcome.TIMEOUT, f"ran past agents.{facts.role.value}.timeout ({facts.timeout:g} s) and was killed")
    if facts.exit_code == CONFIG_EXIT:
        return NotLanded(Outcome.CONFIG, f"its role is misconfigured: {facts.said}")
    if facts.exit_code != 0:
        said = f" ({facts.said})" if facts.said else ""
        return NotLanded(Outcome.FAILED, f"exited with status {facts.exit_code}{said}; its log is {facts.log_file}")
    if facts.moved:
        return NotLanded(Outcome.FAILED, f"{facts.moved} instead of staying on its branch {facts.branch}; "
                                         "nothing of it landed")
    if facts.commit_error:
        return NotLanded(Outcome.FAILED, f"what it left in its worktree could not be committed: {facts.commit_error}")
    if facts.bad_result:
        return NotLanded(Outcome.FAILED, facts.bad_result)
    outcome = land()
    if isinstance(outcome, Conflicted):
        paths = ", ".join(outcome.paths)
        if facts.role is Role.PLANNER:
            return NotLanded(Outcome.REFUSED, f"its task files conflicted with the tip in {paths}; it plans again from the new tip")
        if facts.conflicts_in_a_row >= facts.max_attempts:
            return NotLanded(Outcome.REFUSED, f"it kept conflicting ({facts.max_attempts} times in a row), lately in {paths}")
    return outcome


def last_line(log_file: Path, tail: int = 4096) -> str:
    """What an agent said last: the last line of its log that is not empty (how any backend explains
    a configuration error, exit status 78)."""
    try:
        with open(log_file, "rb") as log_:
            log_.seek(max(0, log_.seek(0, 2) - tail))
            lines = [line.strip() for line in log_.read().decode("utf-8", "replace").splitlines()]
    except OSError as exc:
        return f"(its log {log_file} cannot be read: {exc.strerror})"
    said = [line for line in lines if line and not line.startswith("--- swarmd:")]
    return said[-1][:500] if said else "it said nothing"


def unexpected(exc: Exception) -> str:
    """The reason an attempt failed when swarmd itself hit an error handling its exit (ADR 0020)."""
    return (f"swarmd failed while handling its exit ({type(exc).__name__}: {exc}); "
            f"the traceback is in .git/swarm/{ERRORS_LOG}")


class Exits:
    def __init__(
        self, config: Config, ledger: Ledger, integrator: Integrator, launcher: Launcher,
        goal: Callable[[], str], on_landed: Callable[[str], None], say: Callable[[str], None],
        on_misconfigured: Callable[[Role, str], None] = lambda role, reason: None,
        paused: Callable[[Role], str | None] = lambda role: None,
        metered: Callable[[AgentRun], Usage | None] = lambda run: None,
        redact: Redactor = Redactor({}),
    ) -> None:
        self.config = config
        self.ledger = ledger
        self.integrator = integrator
        self.launcher = launcher
        self.goal = goal
        self.on_landed = on_landed
        self.say = say
        self.on_misconfigured = on_misconfigured
        self.paused = paused  # why a role is paused, or None
        self.metered = metered  # what the gateway counted for a run: its usage, whatever the agent says
        self.redact = redact  # a key an agent echoes never reaches a commit

    def handle(self, run: AgentRun) -> None:
        """A planner's or worker's exit, start to end. A rewound integration branch stops the daemon;
        any other error fails this attempt alone."""
        name = f"{run.role.value} {run.task_id}"
        self.say(f"{name} exited with status {run.exit_code} after {run.seconds:.1f} s")
        try:
            result: Result | None = None
            try:
                result = read_result(run.result_file, Result)
                bad = None
            except BadResult as exc:
                bad = str(exc)
            if result is not None:
                result = self.redact.model(result)
                if (spent := self.metered(run)) is not None:
                    result = result.model_copy(update={"usage": spent})
            failpoints.reached("exit:handle")
            outcome = judge(self._facts(run, bad), lambda: self._land(run, result))
            self.carry_out(run, outcome, result)
        except Rewound:
            raise
        except Exception as exc:
            log.exception("handling the exit of the %s of %s", run.role.value, run.task_id)
            self._not_landed_anyway(run, unexpected(exc))

    def carry_out(self, run: AgentRun, outcome: AttemptOutcome, result: Result | None) -> None:
        name = f"{run.role.value} {run.task_id}"
        if isinstance(outcome, Landed):
            added = f", added {', '.join(outcome.added)}" if outcome.added else ""
            self.say(f"landed {run.task_id} at {outcome.commit[:10]}{added}")
            self.launcher.put_away(run)  # its branch goes: its commits are in the landing now
            self.on_landed(outcome.commit)
        elif isinstance(outcome, Superseded):
            self.say(f"{name}: not landed: {outcome.reason}")
            self.launcher.put_away(run, keep="stale")
        elif isinstance(outcome, Conflicted):
            self._conflicted(run, outcome, result)
        else:
            reason = outcome.reason
            if outcome.outcome is Outcome.BUDGET and result is not None:  # what it had done, for the next try
                reason += f". Its handoff: {result.summary.strip()[:1000]}"
            self._record(run, outcome.outcome, reason, result)
            # A role paused, or a cycle's or the run's budget spent: the task waits for another try.
            stopped = outcome.outcome is Outcome.CONFIG or (outcome.outcome is Outcome.BUDGET and not run.fails_task)
            self.launcher.put_away(run, keep="stopped" if stopped else "failed")
            if outcome.outcome is Outcome.CONFIG:
                self.on_misconfigured(run.role, outcome.reason)

    def _facts(self, run: AgentRun, bad_result: str | None) -> ExitFacts:
        in_a_row = 0
        if run.role is Role.WORKER:
            for attempt in reversed(self.ledger.task_at(self.ledger.tip(), run.task_id).attempts):
                if attempt.outcome is not Outcome.CONFLICT:
                    break
                in_a_row += 1
        return ExitFacts(
            role=run.role, branch=run.worktree.branch, exit_code=run.exit_code, timed_out=run.timed_out,
            over_budget=run.over_budget[1] if run.over_budget else None,
            timeout=getattr(self.config.agents, run.role.value).timeout, log_file=run.log_file, moved=run.moved,
            commit_error=run.commit_error, bad_result=bad_result, conflicts_in_a_row=in_a_row,
            said=self.redact(last_line(run.log_file)) if run.exit_code else "",
            max_attempts=self.config.max_attempts,
        )

    def _land(self, run: AgentRun, result: Result | None) -> AttemptOutcome:
        head = self.ledger.repo.branch_tip(run.worktree.branch)
        if head is None:
            return NotLanded(Outcome.FAILED, f"its branch {run.worktree.branch} is gone; nothing of it landed")
        return self.integrator.land(run, head, result)

    def _conflicted(self, run: AgentRun, conflict: Conflicted, result: Result | None) -> None:
        """Merge the tip into the worker's branch in its worktree, markers and all, and run it again."""
        if why := self.paused(run.role):  # no agent of a paused role starts, a re-run neither
            self._record(run, Outcome.CONFIG, f"{conflict.reason}; not run again to resolve it, since the "
                                              f"{run.role.value} role is paused ({why})", result)
            self.launcher.put_away(run, keep="stopped")
            return
        tip = self.ledger.tip()
        try:
            merging = start_merge(run.worktree.path, tip)
        except GitError as exc:
            reason = f"{conflict.reason}, and merging the tip into its branch for them failed: {exc}"
            self._record(run, Outcome.FAILED, reason, result)
            self.launcher.put_away(run, keep="failed")
            return
        paths = tuple(dict.fromkeys([*merging, *conflict.paths]))
        self._record(run, Outcome.CONFLICT, conflict.reason, result, f"{run.task_id}: conflict in {', '.join(paths)}")
        self.say(f"conflict on {run.task_id} in {', '.join(paths)}: the worker resolves it")
        self.launcher.rerun_after_conflict(run, tip, paths, markers_only=not merging, goal=self.goal())

    def _record(self, run: AgentRun, outcome: Outcome, reason: str, result: Result | None, message: str | None = None) -> None:
        """One commit records an attempt that did not land (and the task's status after it)."""
        name = f"{run.role.value} {run.task_id}"
        attempt = Attempt(number=run.attempt, cycle=run.cycle, outcome=outcome, reason=reason,
                          seconds=round(run.seconds, 1), usage=self.metered(run) or (result.usage if result else None))
        final = outcome is Outcome.BUDGET and run.fails_task
        try:
            status = self.ledger.record(run.task_id, run.cycle, attempt,
                                        message or f"{run.task_id}: attempt {run.attempt} {outcome}", final)
        except Stale as exc:
            self.say(f"{name}: {exc}")
            return
        if outcome not in (Outcome.CONFLICT, Outcome.CONFIG):  # a paused role is said once, by the daemon
            self.say(f"{name}: attempt {run.attempt} {outcome}: {reason}")
        if status is Status.FAILED:
            self.say(f"{run.task_id} failed: {'its budget is' if final else 'its attempts are'} spent")

    def _not_landed_anyway(self, run: AgentRun, reason: str) -> None:
        """After an unexpected error: the attempt fails, the branch is kept, the daemon goes on."""
        self.say(f"{run.role.value} {run.task_id}: {reason}")
        try:
            self._record(run, Outcome.FAILED, reason, None)
        except Rewound:
            raise
        except Exception:
            log.exception("recording the failed attempt of %s", run.task_id)
        try:
            self.launcher.put_away(run, keep="failed")
        except Exception:
            log.exception("putting away the worktree of %s", run.task_id)
            self.launcher.runner.forget(run)
