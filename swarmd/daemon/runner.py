"""The agent contract: one subprocess per agent, in its own worktree and process group, with the SWARM_*
environment, a prompt file and a result file outside the worktree, a log, and a wall-clock deadline.

A record of every running agent is kept under `.git/swarm/agents/` so that a start after a crash can
find agents the dead daemon left behind and stop them.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import signal
import subprocess
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from queue import SimpleQueue

from swarmd.agents.contract import SETTINGS_VAR
from swarmd.errors import UsageError
from swarmd.files import write_atomic
from swarmd.git.pool import Worktree
from swarmd.git.worktree import clean_head, commit_all, moved_off
from swarmd.layout import ERRORS_LOG, TASKS_DIR
from swarmd.secrets import Redactor
from swarmd.tasks import ROOT, Role

log = logging.getLogger(__name__)

@dataclass
class AgentRun:
    role: Role
    task_id: str  # ROOT for a cycle's root planner and for the judge
    cycle: int
    attempt: int
    worktree: Worktree
    run_dir: Path
    base: str  # the integration tip the agent started from
    conflict: tuple[str, ...] = ()
    proc: subprocess.Popen[bytes] | None = None
    started: float = 0.0  # time.monotonic()
    deadline: float = 0.0
    timed_out: bool = False
    exit_code: int | None = None
    ended: float | None = None  # time.monotonic() when the process exited
    # Once it exited and what it left was committed: the commit its worktree is at, on its own branch,
    # or why committing failed; `moved` says where HEAD went if the agent left its branch.
    clean_at: str | None = None
    commit_error: str | None = None
    moved: str | None = None
    away: bool = False  # its worktree went back to the pool (Launcher.put_away): never twice
    token: str = ""  # its token at the gateway, for as long as its run is handled
    over_budget: tuple[str, str] | None = None  # the gateway refused it a call: which budget is spent, and why

    @property
    def key(self) -> str:
        """One agent per key at a time: the task id, or the role for the root planner and the judge."""
        return run_key(self.role.value, self.task_id)

    @property
    def prompt_file(self) -> Path:
        return self.run_dir / "prompt.md"

    @property
    def result_file(self) -> Path:
        return self.run_dir / "result.yaml"

    @property
    def settings_file(self) -> Path:
        return self.run_dir / "settings.json"

    @property
    def log_file(self) -> Path:
        return self.run_dir / "agent.log"

    @property
    def fails_task(self) -> bool:
        """Its task's own budget is spent: no other attempt could make a call."""
        return self.over_budget is not None and self.over_budget[0] == "task"

    @property
    def seconds(self) -> float:
        return (self.ended or time.monotonic()) - self.started


@dataclass(frozen=True)
class Exited:
    """An event for the loop: an agent's process ended."""

    run: AgentRun


Admit = Callable[["AgentRun"], tuple[str, dict[str, str]]]  # a token at the gateway, and its variables


class Runner:
    def __init__(
        self, swarm_dir: Path, commands: dict[Role, list[str]], events: SimpleQueue[object], branch: str,
        settings: dict[Role, dict[str, object]], environments: dict[Role, dict[str, str]], admit: Admit,
        release: Callable[[str], None], redact: Redactor | None = None,
    ) -> None:
        self.swarm_dir = swarm_dir
        self.branch = branch  # the integration branch, for SWARM_INTEGRATION_BRANCH
        self.commands = commands
        self.settings = settings  # per role, handed over as SWARM_AGENT_SETTINGS
        self.environments = environments  # per role: the allowlist of agent_env.environment
        self.admit = admit
        self.release = release
        self.redact = redact or Redactor({})  # what an agent echoed of a secret, out of its log once it exited
        self.events = events
        self.records = swarm_dir / "agents"
        self.records.mkdir(parents=True, exist_ok=True)

    def start(self, run: AgentRun, prompt: str, timeout: float) -> None:
        command = self.commands[run.role]
        run.run_dir.mkdir(parents=True, exist_ok=True)
        run.prompt_file.write_text(prompt, encoding="utf-8")
        run.settings_file.write_text(json.dumps(self.settings.get(run.role, {}), indent=1), encoding="utf-8")
        _remove(run.result_file)  # an earlier run of the same attempt number may have left anything there
        run.token, gateway = self.admit(run)
        env = {**self.environments[run.role], **self.contract_env(run), **gateway}
        with open(run.log_file, "ab") as log:
            log.write(f"--- swarmd: {run.role.value} {run.task_id}, cycle {run.cycle}, attempt {run.attempt}\n".encode())
            log.flush()
            try:
                run.proc = subprocess.Popen(
                    command, cwd=run.worktree.path, env=env, stdin=subprocess.DEVNULL, stdout=log,
                    stderr=subprocess.STDOUT, start_new_session=True,
                )
            except OSError as exc:
                self.release(run.token)
                raise UsageError(
                    f".swarm/config.yaml: field `agents.{run.role.value}.command`: cannot run {command[0]!r}: "
                    f"{exc.strerror}"
                ) from None
        run.started = time.monotonic()
        run.deadline = run.started + timeout
        self._write_record(run)
        threading.Thread(target=self._wait, args=(run,), daemon=True, name=f"wait-{run.key}").start()

    def contract_env(self, run: AgentRun) -> dict[str, str]:
        env = {
            "SWARM_ROLE": run.role.value,
            "SWARM_TASK_ID": run.task_id,
            "SWARM_PROMPT_FILE": str(run.prompt_file),
            "SWARM_RESULT_FILE": str(run.result_file),
            "SWARM_CYCLE": str(run.cycle),
            "SWARM_ATTEMPT": str(run.attempt),
            "SWARM_BASE": run.base,
            "SWARM_INTEGRATION_BRANCH": self.branch,
            SETTINGS_VAR: str(run.settings_file),
        }
        if run.task_id != ROOT:
            env["SWARM_TASK_FILE"] = str(run.worktree.path / TASKS_DIR / f"{run.task_id}.yaml")
        if run.conflict:
            env["SWARM_CONFLICT"] = "1"
        return env

    def _wait(self, run: AgentRun) -> None:
        """Wait for the agent, then commit what it left, here in its own thread: the loop may be busy
        landing others, and the agent's worktree is nobody else's. An agent that left its branch gets
        nothing committed for it: its attempt fails, and the branch it moved to is not swarmd's to touch."""
        assert run.proc is not None
        try:
            run.exit_code = run.proc.wait()
            run.ended = time.monotonic()
            kill_group(run.proc.pid)  # whatever the agent left running in its group goes with it
            self._redact_log(run)
            if run.role is not Role.JUDGE:  # the judge's worktree is thrown away with its branch
                run.moved = moved_off(run.worktree.path, run.worktree.branch)
                if run.moved is None:
                    message = f"swarmd: what the {run.role.value} of {run.task_id} left uncommitted"
                    commit_all(run.worktree.path, message)
                    run.clean_at = clean_head(run.worktree.path, run.worktree.branch)
        except Exception as exc:  # the loop must hear of the exit whatever happened here
            log.exception("after the %s of %s exited", run.role.value, run.task_id)
            run.commit_error = f"{type(exc).__name__}: {exc} (traceback in .git/swarm/{ERRORS_LOG})"
        finally:
            self.events.put(Exited(run))

    def _redact_log(self, run: AgentRun) -> None:
        if not self.redact.secrets:
            return
        text = run.log_file.read_text(encoding="utf-8", errors="surrogateescape")  # any bytes, kept as they are
        if (clean := self.redact(text)) != text:
            tmp = run.log_file.with_name(run.log_file.name + ".tmp")
            tmp.write_bytes(clean.encode("utf-8", "surrogateescape"))
            os.replace(tmp, run.log_file)

    def kill(self, run: AgentRun, sig: int = signal.SIGKILL) -> None:
        if run.proc is not None:
            kill_group(run.proc.pid, sig)

    def forget(self, run: AgentRun) -> None:
        self.release(run.token)
        (self.records / f"{run.key}.json").unlink(missing_ok=True)

    def _write_record(self, run: AgentRun) -> None:
        assert run.proc is not None
        record = {
            "pid": run.proc.pid,
            "proc_start": process_start(run.proc.pid),
            "role": run.role.value,
            "task": run.task_id,
            "cycle": run.cycle,
            "attempt": run.attempt,
            "slot": run.worktree.slot,
            "branch": run.worktree.branch,
            "run_dir": str(run.run_dir),
            "started_at": time.time(),
        }
        write_atomic(self.records / f"{run.key}.json", json.dumps(record))


def _remove(path: Path) -> None:
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path)
    else:
        path.unlink(missing_ok=True)


def run_key(role: str, task_id: str) -> str:
    """The name of an agent's record and run folder: its task id, or `<role>-root` for the root
    planner and the judge, which share the task id `root`."""
    return task_id if task_id != ROOT else f"{role}-root"


def read_records(swarm_dir: Path) -> list[dict[str, object]]:
    records = []
    for path in sorted((swarm_dir / "agents").glob("*.json")):
        try:
            records.append(json.loads(path.read_text()))
        except (OSError, ValueError):
            continue  # a record cut short by a crash: its agent is found through its process group
    return records


def process_start(pid: int) -> str | None:
    """The kernel's start time of a process, so a recycled pid is never taken for our agent."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    return stat.rpartition(")")[2].split()[19]


def kill_group(pgid: int, sig: int = signal.SIGKILL) -> None:
    try:
        os.killpg(pgid, sig)
    except (ProcessLookupError, PermissionError):
        pass
