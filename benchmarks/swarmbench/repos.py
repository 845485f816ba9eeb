"""The repository each run works on: the same generated repository (benchmarks/genrepo.py), set up as
swarmd expects it (tasks on the integration branch, optionally a warm worktree pool) or as the flat design
does (a shared checkout, a worktree per agent, one task file). Setup is not timed as part of the run."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from genrepo import generate
from gitcmd import git

FILES, FOLDERS, COMMITS = 500, 40, 20
AGENT_TIMEOUT_S = 600


def make_repo(path: Path) -> None:
    generate(path, files=FILES, folders=FOLDERS, commits=COMMITS, seed=1)


def pool_size_of(config: Any, workers: int) -> int:
    """`Config.pool_size`: a property in older trees, a method taking the workers' limit in newer ones."""
    size = config.pool_size
    return size(workers) if callable(size) else size


def setup_swarm(path: Path, n: int, scripts: dict[str, Path], warm: bool) -> None:
    """A repository set up for swarmd: init, scripted agents, N work tasks committed on the integration
    branch (as a root planner would), and with `warm` a full worktree pool."""
    import yaml

    from swarmd.config import load_config
    from swarmd.git.landing import commit_changes
    from swarmd.git.pool import WorktreePool
    from swarmd.git.repo import Repo
    from swarmd.init import init
    from swarmd.store import dump_task, task_path
    from swarmd.tasks import Kind, Task

    make_repo(path)
    init(path, goal="# Goal\n\nBenchmark: every work task writes work/<id>.txt.\n")
    agents = {role: {"command": ["bash", str(scripts[role])], "timeout": AGENT_TIMEOUT_S}
              for role in ("planner", "worker", "judge")}
    settings = {"limits": {"planners": 2, "workers": n}, "agents": agents}
    (path / ".swarm/config.yaml").write_text(yaml.safe_dump(settings))
    repo, config = Repo.discover(path), load_config(path)

    def build(tip: str) -> dict[str, bytes | None]:
        return {
            task_path(str(i)): dump_task(Task(
                id=str(i), title=f"Write work/{i}.txt", kind=Kind.WORK, parent=None,
                description=f"Write work/{i}.txt and commit it.", acceptance=f"work/{i}.txt exists.",
            ))
            for i in range(1, n + 1)
        }

    landed = commit_changes(repo, config.integration.branch, build, f"plan root: {n} work tasks")
    assert landed.commit, "the tasks were not committed"
    if warm:
        size = pool_size_of(config, n)
        WorktreePool(repo, size, keep_ignored=config.pool.keep_ignored).warm(size, landed.commit)


def setup_flat(path: Path, n: int) -> None:
    """The flat design's shared checkout (the repository's own worktree on `main`), one worktree per agent
    made ahead of time, and the one shared task file."""
    import yaml

    make_repo(path)
    for i in range(1, n + 1):
        git(path, "worktree", "add", "--detach", "--quiet", str(path.parent / "agents" / f"wt-{i}"), "main")
    tasks = [{"id": str(i), "title": f"Write work/{i}.txt", "status": "todo", "agent": None} for i in range(1, n + 1)]
    (path.parent / "tasks.yaml").write_text(yaml.safe_dump({"tasks": tasks}, sort_keys=False))
