"""Git work inside an agent's worktree: committing what it left, and starting a merge it must resolve."""

from __future__ import annotations

from pathlib import Path

from swarmd import failpoints
from swarmd.git.cli import run_git
from swarmd.git.repo import SWARMD_EMAIL, SWARMD_NAME

_IDENTITY = {
    "GIT_AUTHOR_NAME": SWARMD_NAME,
    "GIT_AUTHOR_EMAIL": SWARMD_EMAIL,
    "GIT_COMMITTER_NAME": SWARMD_NAME,
    "GIT_COMMITTER_EMAIL": SWARMD_EMAIL,
}


def commit_all(path: Path, message: str) -> bool:
    """Commit everything left in the worktree (a merge in progress is concluded); True if it made a commit."""
    run_git(["add", "-A"], path)
    failpoints.reached("agent:commit")
    merging = (Path(run_git(["rev-parse", "--git-dir"], path).stdout.strip()) / "MERGE_HEAD")
    merging = merging if merging.is_absolute() else path / merging
    staged = run_git(["diff", "--cached", "--quiet"], path, ok_codes=(0, 1)).returncode == 1
    if not staged and not merging.exists():
        return False
    run_git(["commit", "--quiet", "--no-verify", "--allow-empty", "-m", message], path, env=_IDENTITY)
    return True


def start_merge(path: Path, tip: str) -> list[str]:
    """Merge `tip` into the worktree's branch and leave git's conflict markers and MERGE_HEAD for the
    agent; return the conflicting paths ([] if the merge went through cleanly and was committed)."""
    proc = run_git(["merge", "--no-edit", "--no-ff", "--quiet", tip], path, ok_codes=(0, 1), env=_IDENTITY)
    if proc.returncode == 0:
        return []
    unmerged = run_git(["diff", "--name-only", "--diff-filter=U", "-z"], path).stdout
    return [p for p in unmerged.split("\0") if p]
