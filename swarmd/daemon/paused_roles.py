"""Roles paused because their agent said it is misconfigured (exit status 78, see the agent contract):
kept in the daemon's memory and in `.git/swarm/paused.json` for `swarmd status`. A start clears them,
since the config it reads may be fixed."""

from __future__ import annotations

import json
from pathlib import Path

from swarmd.files import write_atomic

FILE = "paused.json"


def remember(swarm_dir: Path, paused: dict[str, str]) -> None:
    write_atomic(swarm_dir / FILE, json.dumps(paused, indent=1, sort_keys=True))


def clear(swarm_dir: Path) -> None:
    (swarm_dir / FILE).unlink(missing_ok=True)


def read(swarm_dir: Path) -> dict[str, str]:
    """Role -> why it is paused; empty when nothing is (or the file is unreadable: it is only a view)."""
    try:
        data = json.loads((swarm_dir / FILE).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return {str(role): str(why) for role, why in data.items()} if isinstance(data, dict) else {}
