"""Replay a branch's commits onto another commit in memory, as `git rebase` would, without a checkout."""

from __future__ import annotations

from dataclasses import dataclass

import pygit2

from swarmd.git.merge import merge_trees
from swarmd.git.repo import Repo


@dataclass(frozen=True)
class Replayed:
    """The new head (None on a conflict), the commit that conflicted and where."""

    head: str | None
    conflicts: tuple[str, ...] = ()
    conflicting_commit: str | None = None


def commits_to_replay(repo: Repo, head: str, upstream: str) -> list[pygit2.Commit] | None:
    """The commits of `head` that `upstream` lacks, oldest first; None if they include a merge,
    which a replay cannot reproduce faithfully (merge the branch instead)."""
    walker = repo.raw.walk(
        pygit2.Oid(hex=head), pygit2.enums.SortMode.TOPOLOGICAL | pygit2.enums.SortMode.REVERSE
    )
    walker.hide(pygit2.Oid(hex=upstream))
    commits = list(walker)
    if any(len(commit.parents) != 1 for commit in commits):
        return None
    return commits


def replay(repo: Repo, commits: list[pygit2.Commit], onto: str) -> Replayed:
    """Apply each commit's change onto `onto` in turn; keep authors and messages, drop commits
    that become empty (their change is already there), and write nothing that a ref points at."""
    raw = repo.raw
    committer = repo.signature()
    parent = raw[onto].peel(pygit2.Commit)
    for commit in commits:
        base = commit.parents[0].tree_id
        merged = merge_trees(repo, str(base), str(parent.tree_id), str(commit.tree_id))
        if not merged.clean:
            return Replayed(None, merged.conflicts, str(commit.id))
        tree = pygit2.Oid(hex=merged.tree)
        if tree == parent.tree_id and commit.tree_id != base:
            continue
        new = raw.create_commit(None, commit.author, committer, commit.message, tree, [parent.id])
        parent = raw[new]
    return Replayed(str(parent.id))
