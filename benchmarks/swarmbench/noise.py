"""Other work on the machine skews every figure (2 cores): how much something waited for a CPU
(/proc/pressure/cpu), waiting for a quiet moment before a run, and writing the setup to disk so that a run
does not pay for the writeback of its own setup."""

from __future__ import annotations

import os
import time
from pathlib import Path


def cpu_stall() -> float | None:
    """Microseconds some task waited for a CPU since boot (/proc/pressure/cpu, `some` line), or None."""
    try:
        line = Path("/proc/pressure/cpu").read_text().splitlines()[0]
    except (OSError, IndexError):
        return None
    return float(line.rpartition("total=")[2])


def wait_quiet(limit: float) -> float:
    """Wait (at most `limit` seconds) until nothing waited for a CPU more than 10% of the last 2 s; return the
    share of time something waited over the last 2 s."""
    deadline = time.monotonic() + limit
    while True:
        before, t = cpu_stall(), time.monotonic()
        time.sleep(2.0)
        after = cpu_stall()
        if before is None or after is None:
            return 0.0
        share = (after - before) / 1e6 / (time.monotonic() - t)
        if share < 0.10 or time.monotonic() >= deadline:
            return share


def sync_disk() -> None:
    """Write what the setup wrote to disk before the run, as it would be for a pool that has existed a while
    (the kernel writes dirty pages back within about 30 s), and so the run does not pay for the writeback.

    On this machine that matters beyond the writeback: the root filesystem is ext4 mounted with `discard`,
    so removing a file whose blocks are on disk waits for a discard (one blocking wait per file), while
    removing one still only in the page cache is free. `--no-sync` measures the kinder case (the runs do not
    call this).
    """
    os.sync()
    time.sleep(0.3)
