"""Running the CLI once: its output goes on to the agent's log as it comes and is kept for the adapter to
read; a watch on each line can stop it early (a spent budget, a refused key) instead of letting it retry.

The CLI stays in the adapter's process group, which the daemon leads: the daemon's SIGKILL at the timeout,
its SIGTERM on a stop and its clean-up after the adapter exits reach the CLI and everything it started.
(In a group of its own, the CLI would outlive an adapter killed at the timeout.)
"""

from __future__ import annotations

import json
import os
import selectors
import subprocess
import sys
import threading
from collections.abc import Callable, Mapping
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from swarmd.backends.common import Failed, Misconfigured

Watch = Callable[[str], "Failed | None"]  # a line of output -> why to stop the CLI now, or None


@dataclass(frozen=True)
class Ran:
    status: int  # the CLI's exit status; negative: the signal that killed it
    output: str  # what it printed, standard output and error as they came
    stopped: Failed | None  # why the adapter stopped it, if it did

    def lines(self) -> list[str]:
        return self.output.splitlines()

    def last_line(self) -> str:
        return next((line.strip() for line in reversed(self.lines()) if line.strip()), "")

    def events(self) -> list[dict[str, Any]]:
        """The JSON objects it printed, one a line (JSON Lines); other lines are passed over."""
        found = []
        for line in self.lines():
            if line.startswith("{"):
                try:
                    event = json.loads(line)
                except ValueError:
                    continue
                if isinstance(event, dict):
                    found.append(event)
        return found


def run(argv: list[str], *, cwd: Path, env: Mapping[str, str], stdin: Path | None = None,
        watch: Watch | None = None) -> Ran:
    with ExitStack() as stack:
        source = stack.enter_context(open(stdin, "rb")) if stdin is not None else subprocess.DEVNULL
        try:
            proc = subprocess.Popen(argv, cwd=cwd, env=dict(env), stdin=source, stdout=subprocess.PIPE,
                                    stderr=subprocess.STDOUT)
        except OSError as exc:
            raise Misconfigured(f"cannot run {argv[0]}: {exc.strerror}; check agents.<role>.executable") from None
        stack.callback(proc.wait)
        assert proc.stdout is not None
        stack.enter_context(proc.stdout)
        return _pump(proc, watch)


def _pump(proc: subprocess.Popen[bytes], watch: Watch | None) -> Ran:
    """Copy the CLI's output to ours until it exits. Its exit wakes the loop even if something it started
    still holds the pipe open (that goes with the process group when the adapter exits)."""
    assert proc.stdout is not None
    out = proc.stdout.fileno()
    wake_read, wake_write = os.pipe()
    waiter = threading.Thread(target=lambda: (proc.wait(), os.write(wake_write, b"x")), daemon=True)
    waiter.start()
    kept = _Kept(proc, watch)
    try:
        with selectors.DefaultSelector() as selector:
            selector.register(out, selectors.EVENT_READ)
            selector.register(wake_read, selectors.EVENT_READ)
            exited = False
            while not exited:
                for key, _ in selector.select():
                    if key.fd == wake_read:
                        exited = True
                    elif not kept.take(os.read(out, 65536)):
                        selector.unregister(out)
            os.set_blocking(out, False)
            while True:  # what the CLI wrote just before it exited
                try:
                    data = os.read(out, 65536)
                except BlockingIOError:
                    break
                if not kept.take(data):
                    break
    finally:
        if waiter.is_alive():  # the loop failed: the waiter must not write to a closed (or reused) fd
            proc.kill()
        waiter.join()
        os.close(wake_read)
        os.close(wake_write)
    return kept.ran(proc.returncode)


class _Kept:
    def __init__(self, proc: subprocess.Popen[bytes], watch: Watch | None) -> None:
        self.proc = proc
        self.watch = watch
        self.chunks: list[bytes] = []
        self.partial = b""
        self.stopped: Failed | None = None

    def take(self, data: bytes) -> bool:
        """Pass a chunk on to the log and look at its whole lines; False at the end of the output."""
        if not data:
            return False
        sys.stdout.buffer.write(data)
        sys.stdout.buffer.flush()
        self.chunks.append(data)
        *lines, self.partial = (self.partial + data).split(b"\n")
        for line in lines:
            self._look(line)
        return True

    def _look(self, line: bytes) -> None:
        if self.watch is None or self.stopped is not None:
            return
        self.stopped = self.watch(line.decode("utf-8", errors="replace"))
        if self.stopped is not None:
            self.proc.kill()

    def ran(self, status: int) -> Ran:
        if self.partial:
            self._look(self.partial)
            sys.stdout.buffer.write(b"\n")  # the adapter's own last line starts a line of its own
            sys.stdout.buffer.flush()
        return Ran(status, b"".join(self.chunks).decode("utf-8", errors="replace"), self.stopped)
