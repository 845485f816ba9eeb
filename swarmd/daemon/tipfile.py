"""`.git/swarm/tip`: the last commit swarmd wrote on the integration branch. swarmd is the branch's only
writer, so a tip other than this one was put there by something else (ADR 0019)."""

from __future__ import annotations

from pathlib import Path

from swarmd.files import write_atomic
from swarmd.git.repo import SWARMD_EMAIL, Repo
from swarmd.layout import TIP_FILE


def last_written(swarm_dir: Path, branch: str) -> str | None:
    """The commit swarmd last wrote on `branch`; None when it wrote none there (or the file names another
    branch: `integration.branch` was changed)."""
    try:
        commit, _, recorded = (swarm_dir / TIP_FILE).read_text().strip().partition(" ")
    except FileNotFoundError:
        return None
    return commit or None if recorded == branch else None


def remember(swarm_dir: Path, branch: str, commit: str) -> None:
    write_atomic(swarm_dir / TIP_FILE, f"{commit} {branch}\n")


def foreign_move(repo: Repo, branch: str, tip: str, written: str | None, *, starting: bool = False) -> str | None:
    """Why `tip` is not where swarmd left `branch`, with how to restore it; None when it is. At a start,
    one commit by swarmd on top of `written` is its own (a crash between its swap and `remember`)."""
    if written is None or tip == written:
        return None
    if starting and _own_commit_on(repo, tip, written):
        return None
    if written in repo.raw and repo.is_ancestor(written, tip):
        what = (f"{branch} was moved forward from {written[:10]} to {tip[:10]} by something other than swarmd "
                "(an agent committing on it?), so swarmd lands nothing more: a task could land twice")
    else:
        what = (f"{branch} was moved to {tip[:10]}, which does not descend from {written[:10]}, the last commit "
                "swarmd wrote there: something other than swarmd (an agent?) rewound or rewrote it, so swarmd "
                "lands nothing more")
    return (f"{what}. Restore it with `git update-ref refs/heads/{branch} {written} {tip}` and start again (if "
            f"you moved it yourself on purpose, delete .git/swarm/{TIP_FILE} first)")


def _own_commit_on(repo: Repo, tip: str, written: str) -> bool:
    commit = repo.commit(tip)
    return [str(p) for p in commit.parent_ids[:1]] == [written] and commit.committer.email == SWARMD_EMAIL
