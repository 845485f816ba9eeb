"""`swarmd demo`: a throwaway repository and a real swarm in which every role runs the built-in agent,
`swarmd agent`, against the scripted model server that ships with swarmd (`swarmd.testing`)."""

from __future__ import annotations

import tempfile
from collections.abc import Callable
from pathlib import Path

import yaml

from swarmd import resources
from swarmd.config import load_config
from swarmd.daemon.loop import Daemon, Options
from swarmd.errors import UsageError
from swarmd.git.repo import Repo
from swarmd.init import init
from swarmd.layout import CONFIG_PATH, GOAL_PATH
from swarmd.testing import Script, ScriptedModelServer

MODEL = "openai/swarmd-demo"
PRICE = {"input": 3.0, "output": 15.0, "cached_input": 0.3}  # made up, per million tokens: the cost column fills


def demo(folder: Path | None, say: Callable[[str], None]) -> Path:
    """Never touches anything it did not create: `folder` must not exist yet, or be an empty folder."""
    if folder is not None and (folder.is_symlink() or folder.exists()) and not _empty_folder(folder):
        raise UsageError(f"--dir {folder}: exists and is not an empty folder; the demo makes a repository of its "
                         "own there, so name a new folder (or leave out --dir for a temporary one)")
    script = Script.from_dict(yaml.safe_load(resources.read_text("templates", "demo-script.yaml")), "demo-script.yaml")
    root = Path(tempfile.mkdtemp(prefix="swarmd-demo-")) if folder is None else folder
    root.mkdir(parents=True, exist_ok=True)
    say(f"A throwaway repository in {root}.")
    Repo.create(root, {"README.md": b"# greet\n"}, "A repository to work on")
    init(root, goal=resources.read_text("templates", "demo-goal.md"), model=MODEL)
    with ScriptedModelServer(script) as server:
        say(f"Every role runs the built-in agent (`swarmd agent`), for real: its tool loop, its tools and the task files\n"
            f"it writes. The model is not: it is swarmd's scripted model server on {server.openai_base}, which replays\n"
            f"replies written in advance (templates/demo-script.yaml). No key, no network, no cost; the prices\n"
            f"shown are made up ({PRICE['input']:g} and {PRICE['output']:g} USD per million tokens in and out).\n")
        _point_at(root / CONFIG_PATH, server.openai_base)
        Daemon(Repo.discover(root), load_config(root), Options(say=say)).run()
        if server.failures:  # the demo's own script went wrong: say so rather than pretend
            raise UsageError("the demo's scripted model saw what it did not expect: " + "; ".join(server.failures))
    say(f"\nThe goal was {root / GOAL_PATH}. See what happened:")
    for command in ("status", "tasks", "show 3", "log"):
        say(f"  swarmd -C {root} {command}")
    say(f"  git -C {root} log --graph --oneline swarm/main")
    say(f"Each agent's transcript is in {root}/.git/swarm/runs/<task>/c1-a1/transcript.jsonl.")
    return root


def _point_at(config_file: Path, api_base: str) -> None:
    """Every role of the demo's config at the scripted server, with a price so costs show."""
    config = yaml.safe_load(config_file.read_text(encoding="utf-8"))
    for role in ("planner", "worker", "judge"):
        config["agents"][role].update({"api_base": api_base, "price": PRICE, "retry_delay": 0.1})
    config_file.write_text(yaml.safe_dump(config, sort_keys=False), encoding="utf-8")


def _empty_folder(path: Path) -> bool:
    return path.is_dir() and not path.is_symlink() and not any(path.iterdir())
