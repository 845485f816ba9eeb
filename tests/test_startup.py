"""What each command imports, asserted as sets of modules (never as timings; benchmarks/startup.py
measures those): litellm takes seconds to import, so only the built-in agent's own process may."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from swarmutil import swarm_repo

ONE_CYCLE = {"plan": {1: [{"title": "Write hello", "work": {"write": {"hello.txt": "hello\n"}}}]},
             "judge": {"stop_after": 1}}
VIEWS = (["status"], ["tasks"], ["show", "1"], ["log"])
AGENT_ONLY = {"litellm", "swarmd.agents.llm.model"}
DAEMON = {"swarmd.daemon.runner", "swarmd.daemon.lock", "swarmd.git.pool", "filelock"}


def imported(root: Path, *args: str) -> set[str]:
    """The modules `swarmd -C root *args` imports, as `python -X importtime` lists them."""
    proc = subprocess.run([sys.executable, "-X", "importtime", "-m", "swarmd", "-C", str(root), *args],
                          capture_output=True, text=True, timeout=180, stdin=subprocess.DEVNULL)
    lines = proc.stderr.splitlines()
    assert proc.returncode == 0, [line for line in lines if not line.startswith("import time:")]
    modules = {line.rpartition("|")[2].strip() for line in lines if line.startswith("import time:")}
    assert "swarmd.cli" in modules, "the listing was read"
    return modules


@pytest.fixture
def root(tmp_path: Path) -> Path:
    """A repository after one cycle of the scripted swarm."""
    return swarm_repo(tmp_path / "repo", ONE_CYCLE)


def test_only_the_agent_imports_litellm(root: Path) -> None:
    # `start` runs the daemon in its own process: the daemon must not import litellm either.
    for args in (["check"], ["start"], *VIEWS, ["status", "--json"]):
        assert not imported(root, *args) & AGENT_ONLY, args


def test_views_load_only_what_they_show(root: Path) -> None:
    assert imported(root, "start") & DAEMON
    for args in VIEWS:
        modules = imported(root, *args)
        assert not modules & {"jinja2", "swarmd.prompts"}, f"{args}: the views render no prompt"
        assert "rich" not in modules, f"{args}: the views print plain lines through click"
        if args[0] == "status":
            assert modules & DAEMON, "status reads the daemon's state and the pool"
        else:
            assert not modules & DAEMON, f"{args}: these read only the integration branch"
