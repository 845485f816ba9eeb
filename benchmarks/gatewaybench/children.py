"""The benchmark's child processes, from the parent's side: this script again (`ENTRY`), in a session of its
own, as the upstream or the gateway; the first line it prints (JSON) says where it listens; closing its
stdin stops it."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from typing import Any

from gatewaybench import ENTRY


def start_child(args: list[str]) -> tuple[subprocess.Popen[str], dict[str, Any]]:
    """This script again, in its own session, as the upstream or the gateway; what it printed first."""
    proc = subprocess.Popen([sys.executable, str(ENTRY), *args], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                            text=True, start_new_session=True)
    assert proc.stdout is not None
    line = proc.stdout.readline()
    if not line:
        proc.wait()
        raise RuntimeError(f"{' '.join(args[:1])}: the child exited {proc.returncode} before it was ready")
    return proc, json.loads(line)


def stop_child(proc: subprocess.Popen[str]) -> None:
    assert proc.stdin is not None
    proc.stdin.close()
    try:
        proc.wait(timeout=15)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
