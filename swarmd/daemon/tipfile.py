"""`.git/swarm/tip`: the last commit swarmd wrote on the integration branch. swarmd is the branch's only
writer, so a tip that does not descend from this one was moved by something else (ADR 0019)."""

from __future__ import annotations

import os
from pathlib import Path

from swarmd.layout import TIP_FILE


def last_written(swarm_dir: Path) -> str | None:
    try:
        return (swarm_dir / TIP_FILE).read_text().strip() or None
    except FileNotFoundError:
        return None


def remember(swarm_dir: Path, commit: str) -> None:
    """Atomically: a crash leaves the old commit or the new one."""
    tmp = swarm_dir / f".{TIP_FILE}.tmp"
    tmp.write_text(commit + "\n")
    os.replace(tmp, swarm_dir / TIP_FILE)
