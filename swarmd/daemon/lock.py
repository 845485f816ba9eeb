"""One daemon per repository: a filelock under `.git/swarm/`, and a pid file that says who holds it.

The kernel drops the lock when its holder dies, so a kill -9 never leaves the repository locked."""

from __future__ import annotations

import json
import os
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from filelock import FileLock, Timeout

from swarmd.errors import UsageError
from swarmd.files import write_atomic


def _lock(swarm_dir: Path) -> FileLock:
    return FileLock(swarm_dir / "daemon.lock", timeout=0)


@contextmanager
def hold(swarm_dir: Path) -> Iterator[None]:
    swarm_dir.mkdir(parents=True, exist_ok=True)
    lock = _lock(swarm_dir)
    try:
        lock.acquire()
    except Timeout:
        pid = read_pid(swarm_dir)
        who = f"pid {pid}" if pid else "another process"
        raise UsageError(f"already running in this repository ({who}); `swarmd stop` stops it") from None
    pid_file = swarm_dir / "daemon.pid"
    write_atomic(pid_file, json.dumps({"pid": os.getpid(), "started_at": time.time()}))
    try:
        yield
    finally:
        pid_file.unlink(missing_ok=True)
        lock.release()


def read_pid(swarm_dir: Path) -> int | None:
    try:
        return int(json.loads((swarm_dir / "daemon.pid").read_text())["pid"])
    except (OSError, ValueError, KeyError):
        return None


def running_pid(swarm_dir: Path) -> int | None:
    """The daemon's pid if one holds the lock now, else None."""
    if not (swarm_dir / "daemon.lock").exists():
        return None
    lock = _lock(swarm_dir)
    try:
        lock.acquire()
    except Timeout:
        return read_pid(swarm_dir) or -1
    lock.release()
    return None


def wait_released(swarm_dir: Path, timeout: float) -> bool:
    """Block until the daemon lets go of the lock (it exited); False after `timeout` seconds."""
    lock = FileLock(swarm_dir / "daemon.lock", timeout=timeout)
    try:
        lock.acquire()
    except Timeout:
        return False
    lock.release()
    return True
