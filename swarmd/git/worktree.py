"""Git work inside an agent's worktree: committing what it left, and starting a merge it must resolve."""

from __future__ import annotations

import os
from pathlib import Path

import pygit2

from swarmd import failpoints
from swarmd.git.cli import run_git
from swarmd.git.repo import SWARMD_EMAIL, SWARMD_NAME
from swarmd.git.trees import BLOB_MODE, changed_paths

MOVE_IN_PROCESS_MAX = 64  # files; a bigger move is git's (read-tree), which is built for bulk
# Attributes under which git converts a file on its way into a working tree; a path with any set is git's.
_CONVERTING = ("filter", "text", "eol", "crlf", "ident", "working-tree-encoding")

_IDENTITY = {
    "GIT_AUTHOR_NAME": SWARMD_NAME,
    "GIT_AUTHOR_EMAIL": SWARMD_EMAIL,
    "GIT_COMMITTER_NAME": SWARMD_NAME,
    "GIT_COMMITTER_EMAIL": SWARMD_EMAIL,
}


def commit_all(path: Path, message: str) -> bool:
    """Commit everything left in the worktree (a merge in progress is concluded); True if it made a commit.

    Most agents commit their own work: a read-only look comes first, so a clean worktree costs one git
    command that writes nothing (a hundred agents finishing together all write to the same disk)."""
    admin = git_dir(path)
    merging = admin is not None and (admin / "MERGE_HEAD").exists()
    status = run_git(["--no-optional-locks", "status", "--porcelain", "--untracked-files=all"], path)
    if not status.stdout and not merging:
        return False
    run_git(["add", "-A"], path)
    failpoints.reached("agent:commit")
    staged = run_git(["diff", "--cached", "--quiet"], path, ok_codes=(0, 1)).returncode == 1
    if not staged and not merging:
        return False  # what status showed cannot be staged (a submodule's own changes)
    run_git(["commit", "--quiet", "--no-verify", "--allow-empty", "-m", message], path, env=_IDENTITY)
    return True


def clean_head(path: Path, branch: str) -> str | None:
    """The commit a worktree just committed in is at, if its HEAD is still on `branch` (an agent may
    have switched branches or detached HEAD: then only git can tell what its files are)."""
    head = pygit2.Repository(str(path)).head
    return str(head.target) if head.name == f"refs/heads/{branch}" else None


def moved_off(path: Path, branch: str) -> str | None:
    """Where HEAD went if it is no longer on `branch` (an agent checked out another branch, detached
    HEAD, or deleted its own branch while on it), for a reason that names it; None if it is still there."""
    worktree = pygit2.Repository(str(path))
    if worktree.head_is_unborn:
        target = worktree.references["HEAD"].target
        return f"HEAD is on {str(target).removeprefix('refs/heads/')}, which does not exist (deleted?)"
    head = worktree.head
    if worktree.head_is_detached:
        return f"HEAD was detached at {str(head.target)[:10]}"
    if head.name != f"refs/heads/{branch}":
        return f"HEAD moved to the branch {head.shorthand}"
    return None


def start_merge(path: Path, tip: str) -> list[str]:
    """Merge `tip` into the worktree's branch and leave git's conflict markers and MERGE_HEAD for the
    agent; return the conflicting paths ([] if the merge went through cleanly and was committed)."""
    proc = run_git(["merge", "--no-edit", "--no-ff", "--quiet", tip], path, ok_codes=(0, 1), env=_IDENTITY)
    if proc.returncode == 0:
        return []
    unmerged = run_git(["diff", "--name-only", "--diff-filter=U", "-z"], path).stdout
    return [p for p in unmerged.split("\0") if p]


def git_dir(path: Path) -> Path | None:
    """A working tree's git folder: `.git` itself, or for a linked worktree the folder under
    `.git/worktrees/` that its `.git` file points at; None when neither is there."""
    dot_git = path / ".git"
    if dot_git.is_dir():
        return dot_git
    try:
        text = dot_git.read_text()
    except (FileNotFoundError, NotADirectoryError, IsADirectoryError):
        return None
    if not text.startswith("gitdir: "):
        return None
    admin = Path(text[len("gitdir: "):].strip())
    admin = admin if admin.is_absolute() else path / admin
    return admin if admin.is_dir() else None


def move_in_process(path: Path, at: str, target: str) -> bool:
    """Move a clean worktree from commit `at` to `target` without starting git, when what differs is a
    few plain files that git would write byte for byte (no attribute or `core.autocrlf` converts them,
    no `.gitattributes` among them, nothing untracked or ignored in their way); False, with nothing
    done, when git has to do it. Should writing fail half way, `git reset --hard` finishes the move.

    Starting `git read-tree` costs 4-5 ms of CPU whatever it writes; a hundred agents starting at once
    on two cores feel it, and what most often differs between an idle worktree and the tip is the few
    task files of the last landings."""
    worktree = pygit2.Repository(str(path))
    old, new = (worktree[commit].peel(pygit2.Commit).tree for commit in (at, target))
    changed = changed_paths(worktree, old.id, new.id)
    if len(changed) > MOVE_IN_PROCESS_MAX or not _plain(worktree, path, old, new, changed):
        return False
    try:
        index = worktree.index
        for name, blob in sorted(changed.items()):
            file = path / name
            if blob is None:
                file.unlink(missing_ok=True)
                index.remove(name)
                _remove_empty_folders(file.parent, path)
            else:
                file.parent.mkdir(parents=True, exist_ok=True)
                file.write_bytes(worktree[blob].data)
                index.add(name)  # with the file's stat data, so git sees it clean without reading it
                if index[name].id != blob:  # a filter the checks above did not foresee
                    raise ValueError(f"{name} is not stored as written")
        failpoints.reached("pool:move")
        index.write()
    except (OSError, ValueError, pygit2.GitError):
        run_git(["reset", "--hard", "--quiet", target], path)
    return True


def _plain(
    worktree: pygit2.Repository, path: Path, old: pygit2.Tree, new: pygit2.Tree, changed: dict[str, pygit2.Oid | None]
) -> bool:
    """Whether git would write each changed path byte for byte, with nothing in its way."""
    if "core.autocrlf" in worktree.config and worktree.config["core.autocrlf"].lower() != "false":
        return False
    for name, blob in changed.items():
        try:
            name.encode("utf-8")
        except UnicodeError:
            return False
        if name.rpartition("/")[2] == ".gitattributes":
            return False
        if any(name in tree and tree[name].filemode != BLOB_MODE for tree in (old, new)):
            return False  # executable, symlink, submodule, or a folder becoming a file
        if blob is not None and name not in old and os.path.lexists(path / name):
            return False  # an ignored file or folder where the new file goes
        if any(os.path.lexists(folder) and not _real_folder(folder) for folder in (path / name).parents
               if path in folder.parents):
            return False  # an ignored file or a symlink where a folder of the path goes
        if any(worktree.get_attr(name, attribute) is not None for attribute in _CONVERTING):
            return False
    return True


def _real_folder(path: Path) -> bool:
    return path.is_dir() and not path.is_symlink()


def _remove_empty_folders(folder: Path, top: Path) -> None:
    """As git does when it deletes the last file of a folder."""
    while folder != top and folder.is_dir() and not any(folder.iterdir()):
        folder.rmdir()
        folder = folder.parent
