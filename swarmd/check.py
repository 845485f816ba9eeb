"""`swarmd check`: the config in the working tree, the whole task tree at the integration tip, and
everything else `swarmd start` would refuse (agents not named, the branch checked out or rewound)."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from pathlib import Path

from swarmd.config import Config, load_config
from swarmd.daemon import preflight
from swarmd.errors import UsageError, ValidationError
from swarmd.git.repo import Repo
from swarmd.store import TaskTree


@dataclass(frozen=True)
class CheckReport:
    config: Config
    tree: TaskTree
    cycles: int

    def summary(self) -> str:
        counts = Counter(task.status.value for task in self.tree.tasks.values())
        by_status = ", ".join(f"{n} {status}" for status, n in sorted(counts.items())) or "none yet"
        return (
            f"ok: .swarm/config.yaml is valid; {len(self.tree.tasks)} tasks at "
            f"{self.config.integration.branch} ({self.tree.commit[:10]}): {by_status}; {self.cycles} cycles closed"
        )


def check(start: Path) -> CheckReport:
    repo = Repo.discover(start)
    config = load_config(repo.workdir)
    branch = config.integration.branch
    tip = repo.branch_tip(branch)
    if tip is None:
        raise UsageError(f"integration branch {branch!r} does not exist; run `swarmd init` to create it")
    found = preflight.inspect(repo, config)  # everything `swarmd start` would refuse
    if found.problems:
        raise ValidationError(found.problems)
    assert found.tree is not None, "the branch exists, so preflight read its tree"
    return CheckReport(config, found.tree, found.cycles)
