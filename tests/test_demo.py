"""`swarmd demo` as a new user runs it: no repository around, no git identity, standard input closed."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from gitutil import git


def test_demo_runs_a_two_cycle_swarm_on_a_fresh_machine(tmp_path: Path) -> None:
    home = tmp_path / "home"
    home.mkdir()
    env = {k: v for k, v in os.environ.items() if not k.startswith("GIT_")}
    env.update(HOME=str(home), XDG_CONFIG_HOME=str(home / ".config"), GIT_CONFIG_NOSYSTEM="1")
    outside = tmp_path / "not-a-repo"
    outside.mkdir()
    folder = tmp_path / "demo"
    proc = subprocess.run(
        [sys.executable, "-m", "swarmd", "demo", "--dir", str(folder)], cwd=outside, env=env,
        stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=300,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    out = proc.stdout
    assert "scripted" in out and "call no model" in out, "the demo says plainly that its agents are scripted"
    assert "closed cycle 1: continue" in out and "closed cycle 2: stop" in out
    assert "conflict on 4 in README.md" in out, "the demo shows a real conflict resolved by its worker"
    for command in ("status", "tasks", "show 4", "log"):
        assert f"swarmd -C {folder} {command}" in out
    assert git(folder, "show", "swarm/main:lang/fr.txt") == "Bonjour"
    shown = subprocess.run([sys.executable, "-m", "swarmd", "-C", str(folder), "log"], env=env,
                           capture_output=True, text=True)
    assert shown.returncode == 0 and "stop" in shown.stdout
    assert list(outside.iterdir()) == []
