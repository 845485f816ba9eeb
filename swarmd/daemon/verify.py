"""`verify.command` at the integration tip, in the background: at most one run at a time, always on the
newest tip (requests made while it runs collapse into one). Fix forward: it never gates a landing."""

from __future__ import annotations

import subprocess
import threading
from dataclasses import dataclass
from queue import SimpleQueue

from swarmd.git.pool import WorktreePool

OUTPUT_TAIL = 4000  # characters of a failing run kept for the fix task and the judge


@dataclass(frozen=True)
class Verified:
    """An event for the loop: the tip at `commit` passed or failed."""

    commit: str
    passed: bool
    output: str
    command: list[str]


class Verifier:
    def __init__(self, command: list[str], pool: WorktreePool, timeout: float, events: SimpleQueue[object]) -> None:
        self.command = command
        self.pool = pool
        self.timeout = timeout
        self.events = events
        self._wanted: str | None = None
        self._lock = threading.Lock()
        self._busy = False

    def request(self, commit: str) -> None:
        with self._lock:
            self._wanted = commit
            if self._busy:
                return
            self._busy = True
        threading.Thread(target=self._run, daemon=True, name="verify").start()

    def _run(self) -> None:
        while True:
            with self._lock:
                commit, self._wanted = self._wanted, None
                if commit is None:
                    self._busy = False
                    return
            self.events.put(self._check(commit))

    def _check(self, commit: str) -> Verified:
        worktree = self.pool.acquire("swarm/verify", commit)
        try:
            proc = subprocess.run(
                self.command, cwd=worktree.path, capture_output=True, text=True, timeout=self.timeout,
                stdin=subprocess.DEVNULL, start_new_session=True,
            )
            output = (proc.stdout + proc.stderr)[-OUTPUT_TAIL:]
            return Verified(commit, proc.returncode == 0, output, self.command)
        except subprocess.TimeoutExpired:
            return Verified(commit, False, f"timed out after {self.timeout:.0f} s", self.command)
        except OSError as exc:
            return Verified(commit, False, f"cannot run {self.command[0]!r}: {exc.strerror}", self.command)
        finally:
            self.pool.release(worktree)
            self.pool.repo.delete_branch("swarm/verify")
