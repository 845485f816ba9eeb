"""Helpers for end-to-end tests: a repository set up for swarmd with the bundled scripted agent, and
`swarmd` run as a real process."""

from __future__ import annotations

import json
import os
import select
import subprocess
import sys
from pathlib import Path
from typing import Any

import yaml
from gitutil import git, write

SCRIPTED = [sys.executable, "-m", "swarmd.agents.scripted"]
SWARMD = [sys.executable, "-m", "swarmd"]


def swarm_repo(root: Path, script: dict[str, Any], config: dict[str, Any] | None = None) -> Path:
    """A repository with one commit, `swarmd init` done, scripted agents configured, and a goal that
    carries `script` in a swarm-script block."""
    root.mkdir(parents=True)
    git(root, "init", "-q", "-b", "main")
    write(root, {"README.md": "# project\n", "src/app.py": "print('hi')\n"})
    git(root, "add", "-A")
    git(root, "commit", "-q", "-m", "first")
    run(root, "init")
    agents = {role: {"command": SCRIPTED, "timeout": 60} for role in ("planner", "worker", "judge")}
    config = dict(config or {})
    for role, extra in config.pop("agents", {}).items():
        agents[role] = {**agents[role], **extra}
    settings = {"agents": agents, **config}
    (root / ".swarm/config.yaml").write_text(yaml.safe_dump(settings))
    goal = "# Goal\n\nA test swarm.\n\n```swarm-script\n" + yaml.safe_dump(script) + "```\n"
    (root / ".swarm/goal.md").write_text(goal)
    return root


def run(root: Path, *args: str, timeout: float = 120, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*SWARMD, "-C", str(root), *args], capture_output=True, text=True, timeout=timeout, stdin=subprocess.DEVNULL,
        env=None if env is None else {**os.environ, **env},
    )


def start(root: Path, *args: str, timeout: float = 180) -> subprocess.CompletedProcess[str]:
    proc = run(root, "start", *args, timeout=timeout)
    assert proc.returncode == 0, f"swarmd start exited {proc.returncode}:\n{proc.stdout}\n{proc.stderr}"
    return proc


def tasks(root: Path, ref: str = "swarm/main") -> dict[str, dict[str, Any]]:
    names = git(root, "ls-tree", "--name-only", f"{ref}:.swarm/tasks").split()
    found = {}
    for name in names:
        found[name.removesuffix(".yaml")] = yaml.safe_load(git(root, "show", f"{ref}:.swarm/tasks/{name}"))
    return found


def cycle(root: Path, number: int, ref: str = "swarm/main") -> dict[str, Any]:
    return yaml.safe_load(git(root, "show", f"{ref}:.swarm/cycles/{number:04d}.yaml"))


def json_of(root: Path, *args: str) -> Any:
    proc = run(root, *args, "--json")
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout)


def wait_for_exit(pids: list[int], timeout: float) -> None:
    """Block until these processes have exited (through pidfds, not by polling); fail after `timeout`."""
    fds = []
    for pid in pids:
        try:
            fds.append(os.pidfd_open(pid))
        except ProcessLookupError:
            continue
    try:
        for fd in fds:
            ready, _, _ = select.select([fd], [], [], timeout)
            assert ready, f"an agent was still running {timeout} s later"
    finally:
        for fd in fds:
            os.close(fd)


def agent_pids(root: Path) -> list[int]:
    """Processes started for this repository's agents: their environment names its `.git/swarm/`."""
    marker = f"SWARM_RESULT_FILE={root / '.git' / 'swarm'}".encode()
    return [pid for pid, entry in _processes() if marker in _read(entry / "environ")]


def working_in(root: Path) -> list[int]:
    """Processes whose current folder is in the repository, such as a `git commit` that a killed daemon
    started for an agent that exited: it goes on after the daemon, and a `git fsck` beside it could see
    its reflog entry and not its object (fsck lists the objects first)."""
    inside = root.resolve()
    found = []
    for pid, entry in _processes():
        try:
            cwd = Path(os.readlink(entry / "cwd"))
        except OSError:
            continue
        if cwd == inside or inside in cwd.parents:
            found.append(pid)
    return found


def _processes() -> list[tuple[int, Path]]:
    return [(int(entry.name), entry) for entry in Path("/proc").iterdir()
            if entry.name.isdigit() and int(entry.name) != os.getpid()]


def _read(path: Path) -> bytes:
    try:
        return path.read_bytes()
    except OSError:
        return b""
