"""`swarmd demo` as a new user runs it: no repository around, no git identity, standard input closed."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import yaml
from gitutil import git


def test_demo_runs_the_built_in_agent_in_every_role_on_a_fresh_machine(tmp_path: Path) -> None:
    home = tmp_path / "home"
    home.mkdir()
    env = {k: v for k, v in os.environ.items() if not k.startswith("GIT_") and not k.endswith("_API_KEY")}
    env.update(HOME=str(home), XDG_CONFIG_HOME=str(home / ".config"), GIT_CONFIG_NOSYSTEM="1")
    outside = tmp_path / "not-a-repo"
    outside.mkdir()
    folder = tmp_path / "demo"
    proc = subprocess.run(
        [sys.executable, "-m", "swarmd", "demo", "--dir", str(folder)], cwd=outside, env=env,
        stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=600,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    out = proc.stdout
    assert "built-in agent" in out and "scripted model server" in out, "the demo says plainly what is real and what is not"
    assert "landed root at" in out and "added 1, 2, 3" in out
    assert "closed cycle 1: stop" in out
    for command in ("status", "tasks", "show 3", "log"):
        assert f"swarmd -C {folder} {command}" in out
    assert git(folder, "show", "swarm/main:lang/fr.txt") == "Bonjour"
    task = yaml.safe_load(git(folder, "show", "swarm/main:.swarm/tasks/3.yaml"))
    assert task["needs"] == ["1", "2"], "the planner fixed the task create_task refused"
    planner = (folder / ".git/swarm/runs/planner-root/c1-a1/transcript.jsonl").read_text()
    assert "no task '4'" in planner, "create_task's answer told the model what was wrong"
    status = subprocess.run([sys.executable, "-m", "swarmd", "-C", str(folder), "status", "--json"], env=env,
                            capture_output=True, text=True)
    usage = json.loads(status.stdout)["usage"]
    assert usage["input_tokens"] > 0 and usage["cost_usd"] > 0, "tokens and cost are filled in"
    shown = subprocess.run([sys.executable, "-m", "swarmd", "-C", str(folder), "log"], env=env,
                           capture_output=True, text=True)
    assert shown.returncode == 0 and "stop" in shown.stdout and "$" in shown.stdout
    assert list(outside.iterdir()) == []
