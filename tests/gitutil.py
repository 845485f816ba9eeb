"""Helpers for tests' own setup and checks, through the git command line (not through swarmd)."""

from __future__ import annotations

import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path


def git(cwd: Path, *args: str) -> str:
    proc = subprocess.run(["git", *args], cwd=cwd, capture_output=True, text=True)
    assert proc.returncode == 0, f"git {' '.join(args)}: {proc.stderr}"
    return proc.stdout.strip()


def write(root: Path, files: dict[str, str]) -> None:
    for name, text in files.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)


@contextmanager
def on_the_branch(root: Path, branch: str = "swarm/main") -> Iterator[Path]:
    """A worktree of the integration branch to change by hand, as a person (or a planner's landing) would;
    what it holds at the end is committed there, and the worktree removed."""
    worktree = root.parent / f"by-hand-{root.name}"
    git(root, "worktree", "add", "-q", str(worktree), branch)
    yield worktree
    git(worktree, "add", "-A")
    git(worktree, "commit", "-q", "-m", "by hand")
    git(root, "worktree", "remove", "--force", str(worktree))
    (root / ".git/swarm/tip").unlink(missing_ok=True)  # moved on purpose: as the message says (ADR 0019)
