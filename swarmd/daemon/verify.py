"""`verify.command` at the integration tip, in the background: at most one run at a time, always on the
newest tip (requests made while it runs collapse into one). Fix forward: it never gates a landing."""

from __future__ import annotations

import logging
import subprocess
import threading
from dataclasses import dataclass
from queue import SimpleQueue

from swarmd.daemon.runner import kill_group
from swarmd.git.pool import WorktreePool
from swarmd.git.repo import Repo
from swarmd.layout import ERRORS_LOG

log = logging.getLogger(__name__)

OUTPUT_TAIL = 4000  # characters of a failing run kept for the fix task and the judge


@dataclass(frozen=True)
class Verified:
    """An event for the loop: the tip at `commit` passed or failed."""

    commit: str
    passed: bool
    output: str
    command: list[str]
    problem: str | None = None  # the check could not run (not a verdict on the tip)


class Verifier:
    def __init__(self, command: list[str], pool: WorktreePool, timeout: float, events: SimpleQueue[object]) -> None:
        self.command = command
        self.pool = pool
        self.timeout = timeout
        self.events = events
        self._wanted: str | None = None
        self._lock = threading.Lock()
        self._busy = False
        self._proc: subprocess.Popen[str] | None = None
        self._thread: threading.Thread | None = None

    @property
    def busy(self) -> bool:
        with self._lock:
            return self._busy

    def request(self, commit: str) -> None:
        with self._lock:
            self._wanted = commit
            if self._busy:
                return
            self._busy = True
        self._thread = threading.Thread(target=self._run, daemon=True, name="verify")
        self._thread.start()

    def _run(self) -> None:
        while True:
            with self._lock:
                commit, self._wanted = self._wanted, None
                if commit is None:
                    self._busy = False
                    return
            try:
                result = self._check(commit, Repo.at(self.pool.common_dir))  # this thread's own
            except Exception as exc:  # no worktree free, say: the loop says so, and the judge may run
                log.exception("verifying %s", commit)
                problem = f"{type(exc).__name__}: {exc} (traceback in .git/swarm/{ERRORS_LOG})"
                result = Verified(commit, False, "", self.command, problem=problem)
            self.events.put(result)

    def close(self) -> None:
        """Stop a check that is running (the daemon is exiting) and wait for the thread to end."""
        with self._lock:
            self._wanted = None
            proc, thread = self._proc, self._thread
        if proc is not None:
            kill_group(proc.pid)
        if thread is not None:
            thread.join(timeout=10)

    def _check(self, commit: str, repo: Repo) -> Verified:
        repo.delete_branch("swarm/verify")  # one a crash left would check out an old commit
        worktree = self.pool.acquire("swarm/verify", commit)
        try:
            with self._lock:
                self._proc = subprocess.Popen(
                    self.command, cwd=worktree.path, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                    stdin=subprocess.DEVNULL, start_new_session=True, text=True, errors="replace",
                )
            try:
                output, _ = self._proc.communicate(timeout=self.timeout)
            except subprocess.TimeoutExpired:
                kill_group(self._proc.pid)
                self._proc.communicate()
                return Verified(commit, False, f"timed out after {self.timeout:g} s", self.command)
            return Verified(commit, self._proc.returncode == 0, output[-OUTPUT_TAIL:], self.command)
        except OSError as exc:
            return Verified(commit, False, f"cannot run {self.command[0]!r}: {exc.strerror}", self.command)
        finally:
            with self._lock:
                self._proc = None
            self.pool.release(worktree)
            repo.delete_branch("swarm/verify")
