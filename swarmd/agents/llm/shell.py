"""The run tool: a bash command in the worktree, in its own session, with its output kept within bounds.

When the command exits or times out, its whole process group is killed, so nothing it started in the
background outlives the call; what is left in the pipe is then read for at most DRAIN_S seconds.
"""

from __future__ import annotations

import os
import selectors
import shutil
import signal
import subprocess
import time

from swarmd.agents.llm.exceptions import ToolError
from swarmd.agents.llm.workspace import Workspace

DRAIN_S = 2.0  # after the command's group is killed, how long to read what is left in the pipe


def run(ws: Workspace, command: str, timeout: float | None = None) -> str:
    if timeout is not None and timeout <= 0:
        raise ToolError(f"`timeout` must be a positive number of seconds (got {timeout})")
    seconds = ws.shell_timeout if timeout is None else min(timeout, ws.shell_timeout)
    bash = shutil.which("bash", path=ws.env.get("PATH")) or shutil.which("bash") or "/bin/bash"
    try:
        proc = subprocess.Popen(
            [bash, "-c", command], cwd=ws.root, env=ws.env, stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, start_new_session=True,
        )
    except (OSError, ValueError) as exc:  # ValueError: a NUL or a lone surrogate, which `tools` refuses first
        raise ToolError(f"could not start bash: {exc}") from None
    assert proc.stdout is not None
    output = _Output(ws.output_limit - 300)
    fd = proc.stdout.fileno()
    os.set_blocking(fd, False)
    try:
        exited = _pump(proc, fd, output, time.monotonic() + seconds)
    finally:  # the command and all it started in the background, even if something here failed
        _kill_group(proc.pid)
        proc.wait()
        _drain(fd, output, DRAIN_S)
        proc.stdout.close()
    if not exited:
        return f"timed out after {seconds:g} s; the command and all it started were killed. Output so far:\n" \
               + output.text()
    status = f"exit status {proc.returncode}" if proc.returncode >= 0 else f"killed by signal {-proc.returncode}"
    return f"{status}\n{output.text()}"


class _Output:
    """A command's output: its first and last `limit // 2` bytes, and how many there were in all."""

    def __init__(self, limit: int) -> None:
        self.half = max(limit // 2, 1)
        self.head = bytearray()
        self.tail = bytearray()
        self.total = 0

    def add(self, chunk: bytes) -> None:
        self.total += len(chunk)
        room = self.half - len(self.head)
        if room > 0:
            self.head += chunk[:room]
            chunk = chunk[room:]
        if chunk:
            self.tail += chunk
            del self.tail[:-self.half]

    def text(self) -> str:
        cut = self.total - len(self.head) - len(self.tail)
        if not cut:
            return (self.head + self.tail).decode("utf-8", "replace") or "(no output)"
        head, tail = self.head.decode("utf-8", "replace"), self.tail.decode("utf-8", "replace")
        return f"{head}\n[... {cut:,} bytes of output cut ...]\n{tail}"


def _pump(proc: subprocess.Popen[bytes], fd: int, output: _Output, deadline: float) -> bool:
    """Read the command's output until it exits (True) or the deadline passes (False). A process it left
    in the background may hold the pipe open after it exits: the command itself is looked at every 0.1 s."""
    with selectors.DefaultSelector() as selector:
        selector.register(fd, selectors.EVENT_READ)
        while proc.poll() is None:
            left = deadline - time.monotonic()
            if left <= 0:
                return False
            if selector.select(min(left, 0.1)) and not _read(fd, output):
                try:  # the end of the pipe: wait for the command itself
                    proc.wait(max(deadline - time.monotonic(), 0))
                except subprocess.TimeoutExpired:
                    return False
    return True


def _drain(fd: int, output: _Output, seconds: float) -> None:
    """What is left in the pipe once its writers are killed; bounded, for a writer that escaped the kill."""
    deadline = time.monotonic() + seconds
    with selectors.DefaultSelector() as selector:
        selector.register(fd, selectors.EVENT_READ)
        while (left := deadline - time.monotonic()) > 0 and selector.select(left) and _read(fd, output):
            pass


def _read(fd: int, output: _Output) -> bool:
    """One read from the pipe into `output`; False at its end."""
    try:
        chunk = os.read(fd, 1 << 16)
    except BlockingIOError:
        return True
    output.add(chunk)
    return bool(chunk)


def _kill_group(pgid: int) -> None:
    try:
        os.killpg(pgid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass
