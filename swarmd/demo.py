"""`swarmd demo`: a throwaway repository and a real two-cycle swarm, run by scripted agents."""

from __future__ import annotations

import sys
import tempfile
from collections.abc import Callable
from pathlib import Path

from swarmd import resources
from swarmd.config import load_config
from swarmd.daemon.loop import Daemon, Options
from swarmd.git.repo import Repo
from swarmd.init import init
from swarmd.layout import CONFIG_PATH, GOAL_PATH

SCRIPTED = [sys.executable, "-m", "swarmd.agents.scripted"]


def demo(folder: Path | None, say: Callable[[str], None]) -> Path:
    root = Path(tempfile.mkdtemp(prefix="swarmd-demo-")) if folder is None else folder
    root.mkdir(parents=True, exist_ok=True)
    say(f"A throwaway repository in {root}.")
    say("The agents are scripted ones bundled with swarmd for this demo: they follow the agent contract")
    say("(worktree, SWARM_* environment, prompt and result files) but call no model and cost nothing.\n")
    Repo.create(root, {"README.md": b"# greet\n"}, "A repository to work on")
    init(root, goal=resources.read_text("templates", "demo-goal.md"))
    config = root / CONFIG_PATH
    text = config.read_text()
    for role in ("planner", "worker", "judge"):
        text = text.replace(f"  {role}:\n    command: null", f"  {role}:\n    command: {SCRIPTED!r}".replace("'", '"'))
    config.write_text(text)
    Daemon(Repo.discover(root), load_config(root), Options(say=say)).run()
    say(f"\nThe goal was {root / GOAL_PATH}. See what happened:")
    for command in ("status", "tasks", "show 4", "log"):
        say(f"  swarmd -C {root} {command}")
    say(f"  git -C {root} log --graph --oneline swarm/main")
    return root
