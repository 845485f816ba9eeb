"""One pooled worktree's files and git record: made, moved to another commit, cleaned, removed.

Worktrees are made and removed by hand, in git's documented layout, so that git never sees one half
made (ADR 0018): after a kill -9 at any instant, `git fsck --strict` and `git worktree list` find
nothing wrong.

git knows a linked worktree by its record `.git/worktrees/<id>/` (`HEAD`, `commondir`, `index`, and
`gitdir`: the path of the worktree's `.git` file, which says `gitdir: <record>`), and lists it (so fsck
inspects it) only once `gitdir` exists (worktree.c, `get_linked_worktree`). `git worktree add` writes
`gitdir` first and a placeholder HEAD of zeros after it, which fsck rejects ("detached HEAD points at
nothing") when a kill lands in between. Here `gitdir` is written last, atomically, once HEAD, the
index and the files are in place; and a removal takes the whole record out of `.git/worktrees/` in
one rename before anything else goes. While a worktree is made its record holds a `locked` file, as
git's own do: `git worktree prune` (which `git gc` runs, and an agent's commit may start `git gc
--auto`) would otherwise delete a record that has no `gitdir` yet, however young.
"""

from __future__ import annotations

import itertools
import os
import shutil
import tempfile
from collections.abc import Callable, Iterable
from pathlib import Path

import pygit2

from swarmd import failpoints
from swarmd.files import write_atomic
from swarmd.git.cli import run_git
from swarmd.git.repo import Repo
from swarmd.git.worktree import git_dir, move_in_process

# Records made here are `swarmd-<slot>`: git names the user's after their folder, and the pool's made
# by `git worktree add` before ADR 0018 are plain `<slot>` (found, like any, through the `.git` file).
ADMIN_PREFIX = "swarmd-"
MAKING = "swarmd is making this worktree"  # the `locked` reason while a worktree is made
_GIT_MAKING = "initializing"  # ... and git's, while `git worktree add` runs
TRASH_PREFIX = ".removing-"  # a record on its way out, beside the pool's slots; `repair` removes leftovers


def create(common_dir: Path, path: Path, commit: str) -> None:
    """A linked worktree at `path` (a new folder), detached at `commit`, which git sees only once whole.
    Should anything fail, what was made is removed and the error raised."""
    path = Path(os.path.realpath(path))  # as git writes them: `git worktree list` names real paths
    admin = _new_record(Path(os.path.realpath(common_dir)) / "worktrees", ADMIN_PREFIX + path.name)
    try:
        write_atomic(admin / "locked", MAKING)
        write_atomic(admin / "HEAD", commit + "\n")
        write_atomic(admin / "commondir", "../..\n")
        path.mkdir(parents=True, exist_ok=True)
        write_atomic(path / ".git", f"gitdir: {admin}\n")
        run_git(["read-tree", "--reset", "-u", commit], path)  # the index and every file
        write_atomic(admin / "gitdir", f"{path / '.git'}\n")  # git sees it from here on: whole, and locked
        (admin / "locked").unlink()
    except BaseException:
        remove_record(admin, path.parent)
        shutil.rmtree(path, ignore_errors=True)
        raise


def destroy(path: Path) -> None:
    """Remove a linked worktree and its record: the record first, out of `.git/worktrees/` in one
    rename (git sees the worktree whole, or not at all), then the files."""
    admin = git_dir(path)
    if admin is not None:
        remove_record(admin, path.parent)
    shutil.rmtree(path, onerror=_writable_and_again)


def _writable_and_again(function: Callable[..., object], name: str, exc_info: object) -> None:
    """An agent may leave folders it made read-only: make the parent writable and try once more."""
    try:
        os.chmod(os.path.dirname(name), 0o700)
        if os.path.isdir(name) and not os.path.islink(name):
            os.chmod(name, 0o700)
        function(name)
    except OSError:
        pass  # what cannot go stays; the slot's folder is then removed by the next repair, or never used


def move(path: Path, at: str, target: str) -> None:
    """Move a clean worktree from `at` to `target`, writing only the files that differ (HEAD stays)."""
    if at != target and not move_in_process(path, at, target):
        proc = run_git(["read-tree", "-m", "-u", at, target], path, ok_codes=(0, 128))
        failpoints.reached("pool:move")
        if proc.returncode != 0:
            # Most likely an ignored file stands where the target has a tracked one: reset
            # overwrites it. Anything worse makes reset fail too, and that error is raised.
            run_git(["reset", "--hard", "--quiet", target], path)


def detach(worktree: pygit2.Repository, commit: str) -> None:
    """Put HEAD on `commit`, detached (its branch is free for others), unless it is there already."""
    oid = pygit2.Oid(hex=commit)
    if not (worktree.head_is_detached and worktree.head.target == oid):
        worktree.set_head(oid)


def clean(path: Path, commit: str, keep_ignored: bool) -> None:
    """Make a worktree whose HEAD is at `commit` clean there: what is untracked goes, and what is
    ignored too unless `keep_ignored`."""
    run_git(["reset", "--hard", "--quiet", commit], path)
    failpoints.reached("pool:reset")
    run_git(["clean", "-ffdq" + ("" if keep_ignored else "x")], path)


def remove_record(admin: Path, trash_dir: Path) -> None:
    """Remove a worktree's record `.git/worktrees/<id>/` such that git never sees part of it: moved
    into a new folder `trash_dir/.removing-*` (same file system), then deleted. Where it cannot be
    moved, `gitdir` goes first, which hides it from git as well."""
    trash = Path(tempfile.mkdtemp(prefix=TRASH_PREFIX, dir=trash_dir))
    try:
        os.rename(admin, trash / admin.name)
    except FileNotFoundError:
        pass
    except OSError:
        (admin / "gitdir").unlink(missing_ok=True)
        shutil.rmtree(admin, ignore_errors=True)
    shutil.rmtree(trash, ignore_errors=True)


def intact(path: Path, repo: Repo) -> bool:
    """Whether a worktree is whole: a record git sees, with HEAD and an index, HEAD on a commit the
    repository has (or on a branch, which may be gone). A crash while one was made fails this."""
    admin = git_dir(path)
    if admin is None or not all((admin / name).is_file() for name in ("gitdir", "HEAD", "index")):
        return False
    try:
        worktree = pygit2.Repository(str(path))
        return worktree.head_is_unborn or worktree.head.target in repo.raw
    except (pygit2.GitError, KeyError):
        return False


def unlock(path: Path) -> bool:
    """Drop the `locked` file a crash left once the worktree was whole, if swarmd or `git worktree
    add` wrote it while making the worktree (a lock the user put stays); True if one was dropped."""
    admin = git_dir(path)
    if admin is None or not (admin / "locked").is_file():
        return False
    if (admin / "locked").read_text().strip() not in (MAKING, _GIT_MAKING):
        return False
    (admin / "locked").unlink()
    return True


def remove_stale_locks(path: Path) -> None:
    """A git command killed mid-write leaves `index.lock` or `HEAD.lock` in a worktree's record.
    Call only when nothing else can be working there (after a crash, under the daemon lock)."""
    admin = git_dir(path)
    if admin is not None:
        for lock in admin.glob("*.lock"):
            lock.unlink(missing_ok=True)


def half_made(common_dir: Path) -> list[Path]:
    """Records swarmd began and a crash cut short before their `gitdir`: git does not see them."""
    return [admin for admin in (common_dir / "worktrees").glob(ADMIN_PREFIX + "*")
            if admin.is_dir() and not (admin / "gitdir").exists()]


def orphaned(common_dir: Path, root: Path) -> list[Path]:
    """Records of worktrees under `root` whose folder is gone (a `git worktree add` killed early stays
    locked, so `git worktree prune` alone would keep it)."""
    orphans = []
    for admin in (common_dir / "worktrees").glob("*"):
        try:
            checkout = Path((admin / "gitdir").read_text().strip()).parent
        except (FileNotFoundError, NotADirectoryError):
            continue
        if checkout.parent.resolve() == root.resolve() and not checkout.exists():
            orphans.append(admin)
    return orphans


def disk_usage(root: Path, worktrees: Iterable[Path]) -> int:
    """Bytes on disk under `root` (the pool: worktrees and markers) and in the worktrees' records."""
    total = 0
    for top in [root, *(admin for admin in map(git_dir, worktrees) if admin is not None)]:
        for folder, _, files in os.walk(top):
            for name in files:
                try:
                    total += os.lstat(os.path.join(folder, name)).st_size
                except FileNotFoundError:
                    pass
    return total


def _new_record(worktrees: Path, name: str) -> Path:
    """A new, empty record folder: `name`, or `name-2`, `name-3`, ... when taken (by a half-made one
    that `repair` has not removed yet, say)."""
    worktrees.mkdir(exist_ok=True)
    for n in itertools.count(1):
        admin = worktrees / (name if n == 1 else f"{name}-{n}")
        try:
            admin.mkdir()
            return admin
        except FileExistsError:
            continue
    raise AssertionError("unreachable")
