"""A bounded pool of git worktrees under `.git/swarm/pool/`, reused from task to task.

Creating a worktree writes every file of the repository (0.2-0.7 s at 20,000 files, far more on a busy
disk); moving a clean one to another commit writes only the files that differ. So worktrees are made
once, kept, and cleaned when a task gives one back, off the path of the next request.

A slot `wt-N` is in one of three states, told by marker files beside it:
    `wt-N.lease` (the branch it holds)  handed out: an agent may be working in it
    `wt-N.clean` (the commit it is at)  idle, known clean, on a detached HEAD
    neither, or both                    unknown (a crash): `repair` cleans it before reuse
Ignored files (build outputs) survive reuse unless `keep_ignored` is off, so builds stay incremental.
"""

from __future__ import annotations

import os
import re
import shutil
from dataclasses import dataclass
from pathlib import Path

import pygit2
from filelock import FileLock

from swarmd import failpoints
from swarmd.errors import GitError, SwarmError
from swarmd.git.cli import run_git
from swarmd.git.repo import Repo

SLOT = re.compile(r"wt-([0-9]+)")


@dataclass(frozen=True)
class Worktree:
    slot: str
    path: Path
    branch: str


class PoolExhausted(SwarmError):
    pass


class WorktreePool:
    def __init__(self, repo: Repo, size: int, *, keep_ignored: bool = True) -> None:
        self.repo = repo
        self.size = size
        self.keep_ignored = keep_ignored
        self.root = repo.swarm_dir / "pool"
        self.root.mkdir(parents=True, exist_ok=True)
        self._lock = FileLock(self.root / "pool.lock")

    # -- handing out and taking back ------------------------------------------------------------

    def acquire(self, branch: str, start: str | None = None) -> Worktree:
        """A clean worktree on `branch`: the branch's own tip if it exists, else a new branch at `start`."""
        ref = f"refs/heads/{branch}"
        tip = self.repo.ref_target(ref)
        if tip is None and start is None:
            raise GitError(f"branch {branch!r} does not exist and no commit was given to start it at")
        with self._lock:
            checked_out = self.repo.checked_out_branches()
            if branch in self._leased_branches() or branch in checked_out:
                where = checked_out.get(branch, "a pooled worktree")
                raise GitError(f"branch {branch!r} is already checked out in {where}")
            slot, at = self._take_idle_slot()
            _write(self._marker(slot, "lease"), branch)
            target = tip or start
            path = self.root / slot
            if at is None:
                # Under the lock: two `git worktree add` at once race inside git (.git/worktrees/).
                try:
                    self._create(path, target)
                except BaseException:
                    self._destroy(slot)
                    raise
        try:
            if at is not None:
                self._move(path, at, target)
            if tip is None:
                self.repo.create_branch(branch, target)
            pygit2.Repository(str(path)).set_head(ref)
        except BaseException:
            self._release_path(slot)  # leave the slot in a state `repair` understands
            raise
        return Worktree(slot, path, branch)

    def release(self, worktree: Worktree) -> None:
        """Take a worktree back: detach it from its branch (which keeps every commit) and clean it."""
        self._release_path(worktree.slot)

    def warm(self, count: int, commit: str) -> None:
        """Create idle worktrees at `commit` until the pool holds `count` (at most its size)."""
        while True:
            with self._lock:
                if len(self._slots()) + len(self._creating()) >= min(count, self.size):
                    return
                slot = self._free_slot_name()
                _write(self._marker(slot, "lease"), "")
                try:
                    self._create(self.root / slot, commit)
                except BaseException:
                    self._destroy(slot)
                    raise
                self._mark_clean(slot, commit)

    # -- after a crash -----------------------------------------------------------------------

    def repair(self) -> list[str]:
        """Make every slot usable again after a crash; say what was done. Any lease is taken to be
        stale: call this only while no agent works in the pool (the daemon's start)."""
        done: list[str] = []
        with self._lock:
            for slot in self._slots():
                path = self.root / slot
                self.remove_stale_locks(path)
                if not self._intact(path):
                    self._destroy(slot)
                    done.append(f"removed broken worktree {slot}")
                elif not self._marker(slot, "clean").exists() or self._marker(slot, "lease").exists():
                    self._release_path(slot)
                    done.append(f"cleaned worktree {slot}")
            for slot in sorted(self._slots(), key=_slot_number)[self.size:]:
                self._destroy(slot)
                done.append(f"removed worktree {slot} beyond the pool size of {self.size}")
            for marker in self.root.glob("wt-*.*"):
                if not (self.root / marker.stem).exists():
                    marker.unlink()
                    done.append(f"dropped {marker.name}: its worktree was never made")
            for admin in self._orphaned_admin_dirs():
                shutil.rmtree(admin, ignore_errors=True)
                done.append(f"removed the git records of a half-made worktree {admin.name}")
            run_git(["worktree", "prune"], self.repo.common_dir)
        return done

    def disk_usage(self) -> int:
        """Bytes on disk: the worktrees and their records under `.git/worktrees/` (index included)."""
        folders = [self.root] + [a for a in map(_admin_dir, self.root.glob("wt-*")) if a is not None]
        total = 0
        for top in folders:
            for folder, _, files in os.walk(top):
                for name in files:
                    try:
                        total += os.lstat(os.path.join(folder, name)).st_size
                    except FileNotFoundError:
                        pass
        return total

    def leases(self) -> dict[str, str]:
        """slot -> branch for every worktree handed out."""
        leases = {}
        for marker in self.root.glob("wt-*.lease"):
            try:
                leases[marker.stem] = marker.read_text()
            except FileNotFoundError:
                continue  # given back while we looked
        return leases

    # -- the parts ---------------------------------------------------------------------------

    def _slots(self) -> list[str]:
        return sorted(p.name for p in self.root.iterdir() if p.is_dir() and SLOT.fullmatch(p.name))

    def _leased_branches(self) -> set[str]:
        return set(self.leases().values())

    def _take_idle_slot(self) -> tuple[str, str | None]:
        """(slot, the commit it is at), or a new slot name and None; the caller holds the lock."""
        for slot in self._slots():
            clean = self._marker(slot, "clean")
            if clean.exists() and not self._marker(slot, "lease").exists():
                try:
                    at = clean.read_text().strip()
                except FileNotFoundError:
                    continue
                clean.unlink()
                return slot, at
        if len(self._slots()) + len(self._creating()) >= self.size:
            raise PoolExhausted(
                f"all {self.size} pooled worktrees are in use; raise the limits in .swarm/config.yaml "
                "or wait for an agent to finish"
            )
        return self._free_slot_name(), None

    def _creating(self) -> list[str]:
        return [m.stem for m in self.root.glob("wt-*.lease") if not (self.root / m.stem).exists()]

    def _free_slot_name(self) -> str:
        used = {_slot_number(s) for s in self._slots()} | {_slot_number(s) for s in self._creating()}
        return f"wt-{min(set(range(1, len(used) + 2)) - used)}"

    def _marker(self, slot: str, kind: str) -> Path:
        return self.root / f"{slot}.{kind}"

    def _create(self, path: Path, commit: str) -> None:
        run_git(["worktree", "add", "--detach", "--quiet", str(path), commit], self.repo.common_dir)

    def _move(self, path: Path, at: str, target: str) -> None:
        """Move a clean worktree from `at` to `target`, writing only the files that differ."""
        if at != target:
            proc = run_git(["read-tree", "-m", "-u", at, target], path, ok_codes=(0, 128))
            failpoints.reached("pool:move")
            if proc.returncode != 0:
                # Most likely an ignored file stands where the target has a tracked one: reset
                # overwrites it. Anything worse makes reset fail too, and that error is raised.
                run_git(["reset", "--hard", "--quiet", target], path)
        pygit2.Repository(str(path)).set_head(pygit2.Oid(hex=target))

    def _release_path(self, slot: str) -> None:
        path = self.root / slot
        if not self._intact(path):
            self._destroy(slot)
            return
        worktree = pygit2.Repository(str(path))
        # On a branch deleted meanwhile, HEAD is unborn: any commit will do, the next acquire moves it.
        commit = str(worktree.head.target) if not worktree.head_is_unborn else self.repo.head_commit()
        worktree.set_head(pygit2.Oid(hex=commit))  # detached: the branch is free for others
        run_git(["reset", "--hard", "--quiet", commit], path)
        failpoints.reached("pool:reset")
        run_git(["clean", "-ffdq" + ("" if self.keep_ignored else "x")], path)
        self._mark_clean(slot, commit)

    def _mark_clean(self, slot: str, commit: str) -> None:
        _write(self._marker(slot, "clean"), commit)
        self._marker(slot, "lease").unlink(missing_ok=True)

    def _intact(self, path: Path) -> bool:
        """A worktree a crash may have cut short during `git worktree add` lacks its HEAD or index."""
        admin = _admin_dir(path)
        if admin is None or not (admin / "HEAD").is_file() or not (admin / "index").is_file():
            return False
        try:
            worktree = pygit2.Repository(str(path))
            return worktree.head_is_unborn or worktree.head.target in self.repo.raw
        except (pygit2.GitError, KeyError):
            return False

    @staticmethod
    def remove_stale_locks(path: Path) -> None:
        """A git command killed mid-write leaves `index.lock` or `HEAD.lock` in a worktree's records.
        Call only when nothing else can be working there (after a crash, under the daemon lock)."""
        admin = _admin_dir(path)
        if admin is not None:
            for lock in admin.glob("*.lock"):
                lock.unlink(missing_ok=True)

    def _orphaned_admin_dirs(self) -> list[Path]:
        """Records under `.git/worktrees/` for pool folders that are gone (a `worktree add` killed
        early stays locked, so `git worktree prune` alone would keep it)."""
        orphans = []
        for admin in (self.repo.common_dir / "worktrees").glob("*"):
            try:
                checkout = Path((admin / "gitdir").read_text().strip()).parent
            except (FileNotFoundError, NotADirectoryError):
                continue
            if checkout.parent.resolve() == self.root.resolve() and not checkout.exists():
                orphans.append(admin)
        return orphans

    def _destroy(self, slot: str) -> None:
        path = self.root / slot
        admin = _admin_dir(path)
        if admin is not None:
            shutil.rmtree(admin, ignore_errors=True)
        shutil.rmtree(path, ignore_errors=True)
        for kind in ("lease", "clean"):
            self._marker(slot, kind).unlink(missing_ok=True)


def _admin_dir(path: Path) -> Path | None:
    """The worktree's folder under `.git/worktrees/`, from the `.git` file that points at it."""
    try:
        text = (path / ".git").read_text()
    except (FileNotFoundError, NotADirectoryError, IsADirectoryError):
        return None
    if not text.startswith("gitdir: "):
        return None
    admin = Path(text[len("gitdir: "):].strip())
    return admin if admin.is_dir() else None


def _slot_number(slot: str) -> int:
    return int(slot.split("-")[1])


def _write(path: Path, text: str) -> None:
    """Atomically: a crash leaves the old file or the new one, never half of one."""
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(text)
    os.replace(tmp, path)
