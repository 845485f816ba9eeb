"""`swarmd demo`: a throwaway repository and a real two-cycle swarm, run by scripted agents."""

from __future__ import annotations

import sys
import tempfile
from collections.abc import Callable
from pathlib import Path

from swarmd import resources
from swarmd.config import load_config
from swarmd.daemon.loop import Daemon, Options
from swarmd.errors import UsageError
from swarmd.git.repo import Repo
from swarmd.init import init
from swarmd.layout import CONFIG_PATH, GOAL_PATH

SCRIPTED = [sys.executable, "-m", "swarmd.agents.scripted"]


def demo(folder: Path | None, say: Callable[[str], None]) -> Path:
    """Never touches anything it did not create: `folder` must not exist yet, or be an empty folder."""
    if folder is not None and (folder.is_symlink() or folder.exists()) and not _empty_folder(folder):
        raise UsageError(f"--dir {folder}: exists and is not an empty folder; the demo makes a repository of its "
                         "own there, so name a new folder (or leave out --dir for a temporary one)")
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


def _empty_folder(path: Path) -> bool:
    return path.is_dir() and not path.is_symlink() and not any(path.iterdir())
