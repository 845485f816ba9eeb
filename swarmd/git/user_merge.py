"""`git merge` in the person's own working tree: the one place swarmd writes to their branch (`swarmd merge`).

git itself does the merge, as the person (their GIT_AUTHOR_* and GIT_COMMITTER_* variables and config), so
its checks for local changes, its conflict markers and `git merge --abort`, and their hooks all apply.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from pygit2.enums import RepositoryState

from swarmd.git.cli import run_git
from swarmd.git.repo import Repo

# What git is in the middle of, by the state libgit2 reads from the git folder (MERGE_HEAD, rebase-merge/, ...).
_STATES = {
    RepositoryState.MERGE: "a merge",
    RepositoryState.REVERT: "a revert",
    RepositoryState.REVERT_SEQUENCE: "a revert",
    RepositoryState.CHERRYPICK: "a cherry-pick",
    RepositoryState.CHERRYPICK_SEQUENCE: "a cherry-pick",
    RepositoryState.BISECT: "a bisect",
    RepositoryState.REBASE: "a rebase",
    RepositoryState.REBASE_INTERACTIVE: "a rebase",
    RepositoryState.REBASE_MERGE: "a rebase",
    RepositoryState.APPLY_MAILBOX: "a `git am`",
    RepositoryState.APPLY_MAILBOX_OR_REBASE: "a `git am` or rebase",
}


@dataclass(frozen=True)
class UserMerge:
    """What `git merge` did: a merge commit, or a merge left in progress (conflicted paths, possibly none
    when a hook stopped it), or a refusal that changed nothing (`in_progress` False)."""

    commit: str | None
    in_progress: bool = False
    conflicts: tuple[str, ...] = ()
    output: str = ""  # git's own words, on one line, when it did not commit


def head_branch(repo: Repo) -> str | None:
    """The branch checked out in the repository's working tree; None when HEAD is detached."""
    if repo.raw.head_is_detached:
        return None
    return repo.raw.head.shorthand


def operation_in_progress(repo: Repo) -> str | None:
    """What git is in the middle of in this working tree ("a merge", "a rebase", ...), or None."""
    state = repo.raw.state()
    return None if state == RepositoryState.NONE else _STATES.get(state, "an operation")


def merge_into_head(repo: Repo, commit: str, message: str) -> UserMerge:
    """`git merge --no-ff` of `commit` into the branch checked out in the working tree."""
    proc = run_git(
        ["merge", "--no-ff", "--no-edit", "-m", message, commit], repo.workdir, ok_codes=(0, 1, 2, 128)
    )
    if proc.returncode == 0:
        return UserMerge(repo.head_commit())
    output = _one_line(proc.stderr + proc.stdout)
    if repo.raw.state() != RepositoryState.MERGE:
        return UserMerge(None, output=output)
    unmerged = run_git(["diff", "--name-only", "--diff-filter=U", "-z"], repo.workdir).stdout
    return UserMerge(None, True, tuple(p for p in unmerged.split("\0") if p), output)


# Lines git adds after saying why it stopped, which tell nothing more on a single line.
_NOISE = re.compile(r"Aborting|Merge with strategy \S+ failed\.")


def _one_line(text: str) -> str:
    lines = (line.strip() for line in text.splitlines())
    return " ".join(line for line in lines if line and not _NOISE.fullmatch(line))

