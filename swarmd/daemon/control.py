"""Starting the daemon in the foreground or the background, and stopping it."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

from swarmd.config import load_config
from swarmd.daemon import lock
from swarmd.daemon.loop import Daemon, Options
from swarmd.errors import SwarmError, UsageError
from swarmd.git.repo import Repo


def run_foreground(start: Path, cycles: int | None, max_workers: int | None, say: Callable[[str], None]) -> int:
    repo = Repo.discover(start)
    config = load_config(repo.workdir)
    ready_fd = os.environ.pop("SWARMD_READY_FD", None)
    options = Options(cycles=cycles, max_workers=max_workers, say=say)
    daemon = Daemon(repo, config, options)
    if ready_fd is not None:
        daemon.on_ready = lambda: _signal_ready(int(ready_fd))
    return daemon.run()


def _signal_ready(fd: int) -> None:
    os.write(fd, b"ready\n")
    os.close(fd)


def detach(start: Path, cycles: int | None, max_workers: int | None) -> tuple[int, Path]:
    """Start `swarmd start` in its own session with its output in `.git/swarm/daemon.log`, and return
    once it holds the daemon lock (or say why it could not start)."""
    repo = Repo.discover(start)
    load_config(repo.workdir)  # a bad config is reported here, not only in the log
    if (pid := lock.running_pid(repo.swarm_dir)) is not None:
        raise UsageError(f"already running in this repository (pid {pid}); `swarmd stop` stops it")
    log = repo.swarm_dir / "daemon.log"
    read_end, write_end = os.pipe()
    argv = [sys.executable, "-m", "swarmd", "-C", str(repo.workdir), "start"]
    argv += ["--cycles", str(cycles)] if cycles else []
    argv += ["--max-workers", str(max_workers)] if max_workers else []
    with open(log, "ab") as out:
        proc = subprocess.Popen(
            argv, stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT, start_new_session=True,
            pass_fds=(write_end,), env={**os.environ, "SWARMD_READY_FD": str(write_end)},
        )
    os.close(write_end)
    with os.fdopen(read_end, "rb") as ready:
        answer = ready.read()  # "ready", or nothing when the daemon exits before it is
    if b"ready" not in answer:
        proc.wait()
        tail = log.read_text(errors="replace").strip().splitlines()[-3:]
        raise SwarmError(f"the daemon did not start (exit status {proc.returncode}): " + " / ".join(tail))
    return proc.pid, log


def stop(start: Path, timeout: float) -> str:
    repo = Repo.discover(start)
    pid = lock.running_pid(repo.swarm_dir)
    if pid is None:
        return "swarmd is not running in this repository."
    if pid < 0:
        raise SwarmError("a daemon holds the lock but wrote no pid file; stop it by hand")
    os.kill(pid, signal.SIGTERM)
    if not lock.wait_released(repo.swarm_dir, timeout):
        raise SwarmError(f"the daemon (pid {pid}) has not stopped after {timeout:g} s; `kill -9 {pid}` is safe")
    return f"swarmd (pid {pid}) stopped."
