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
import threading
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor, as_completed
from dataclasses import dataclass
from queue import SimpleQueue
from pathlib import Path

import pygit2
from filelock import FileLock

from swarmd import failpoints
from swarmd.errors import GitError, SwarmError
from swarmd.git.cli import run_git
from swarmd.git.repo import Repo
from swarmd.git.worktree import git_dir, move_in_process

SLOT = re.compile(r"wt-([0-9]+)")
RETURN_PATIENCE_S = 60.0  # how long an acquire waits for a worktree given back before the pool counts as full


@dataclass(frozen=True)
class Worktree:
    slot: str
    path: Path
    branch: str


@dataclass(frozen=True)
class _Return:
    """A worktree given back, for the pool's own thread to release."""

    worktree: Worktree
    commit: str
    committed: bool


@dataclass(frozen=True)
class _Claim:
    """A slot leased for a branch, not yet at its commit."""

    slot: str
    path: Path
    branch: str
    tip: str | None  # the branch's commit if it exists (else it is created at `target`)
    target: str
    at: str | None  # the commit an idle worktree is at; None: the worktree must be made


class PoolExhausted(SwarmError):
    pass


class WorktreePool:
    def __init__(
        self, repo: Repo, size: int, *, keep_ignored: bool = True, on_error: Callable[[str], None] = lambda line: None
    ) -> None:
        self.repo = repo  # the creating thread's; other threads open their own (`_repo`)
        self.common_dir = repo.common_dir
        self._owner = threading.current_thread()
        self._local = threading.local()
        self.size = size
        self.keep_ignored = keep_ignored
        self.root = repo.swarm_dir / "pool"
        self.root.mkdir(parents=True, exist_ok=True)
        # Held for milliseconds at a time by several threads: retry at 5 ms, not filelock's 50.
        self._lock = FileLock(self.root / "pool.lock", poll_interval=0.005)
        self._on_error = on_error  # what went wrong on the pool's own thread, for the daemon's log
        self._returns: SimpleQueue[_Return | None] = SimpleQueue()
        self._returned = threading.Condition()
        self._pending = 0  # worktrees given back and not yet clean
        self._taken_back = 0  # ... and those done since the pool was made
        self._returner: threading.Thread | None = None

    # -- handing out and taking back ------------------------------------------------------------

    def acquire(self, branch: str, start: str | None = None) -> Worktree:
        """A clean worktree on `branch`: the branch's own tip if it exists, else a new branch at `start`."""
        [claim] = self._claim([branch], start)
        try:
            self._prepare(claim)
        except BaseException:
            self._release_path(claim.slot)  # leave the slot in a state `repair` understands
            raise
        return self._hand_out(claim)

    def acquire_many(self, branches: Sequence[str], start: str, parallel: int = 3) -> Iterator[Worktree]:
        """Worktrees for several branches (as `acquire`), each yielded as soon as it is ready. Moving a
        worktree is git writing files; doing `parallel` at a time overlaps that with whatever the caller
        does with the worktrees already yielded (starting agents, on a 2-core machine). Close the
        iterator early (`contextlib.closing`) and the worktrees not yet yielded go back to the pool."""
        claims = self._claim(branches, start)
        futures: dict[Future[None], _Claim] = {}
        given: set[str] = set()
        executor = ThreadPoolExecutor(max_workers=parallel, thread_name_prefix="pool")
        try:
            futures.update((executor.submit(self._prepare, claim), claim) for claim in claims)
            for future in as_completed(futures):
                future.result()
                claim = futures[future]
                given.add(claim.slot)  # handed out, or released by _hand_out if that fails
                yield self._hand_out(claim)
        finally:
            executor.shutdown(wait=True, cancel_futures=True)
            for future, claim in futures.items():
                if claim.slot in given:
                    continue
                if future.cancelled():
                    self._unclaim(claim)
                else:
                    self._release_path(claim.slot)

    def release(self, worktree: Worktree) -> None:
        """Take a worktree back: detach it from its branch (which keeps every commit) and clean it."""
        self._release_path(worktree.slot)

    def give_back(self, worktree: Worktree, commit: str, *, committed: bool) -> None:
        """`release` at `commit` (the branch's head when its agent finished), on the pool's own thread:
        a release is a few small writes, but on a disk busy with a hundred agents' commits one can take
        half a second, and the caller has landings to make. The caller may rename or delete the branch
        at once. `committed`: everything in it was just committed at `commit` on its branch, so unless
        ignored files must go too, it is clean already and only its HEAD is detached (no git command
        runs). `acquire` waits for these when no slot is idle; `close` waits for them all."""
        with self._returned:
            self._pending += 1
            if self._returner is None:
                self._returner = threading.Thread(target=self._give_back_loop, daemon=True, name="pool-returns")
                self._returner.start()
        self._returns.put(_Return(worktree, commit, committed))

    def close(self) -> None:
        """Finish what was given back (what a crash leaves unfinished, `repair` does at the next start)."""
        if self._returner is not None:
            self._returns.put(None)
            self._returner.join()
            self._returner = None

    def warm(self, count: int, commit: str) -> None:
        """Create idle worktrees at `commit` until the pool holds `count` (at most its size)."""
        while True:
            with self._lock:
                slots, markers = self._listing()
                used = slots | {m.removesuffix(".lease") for m in markers if m.endswith(".lease")}
                if len(used) >= min(count, self.size):
                    return
                slot = _free_slot_name(used)
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
                if not self._intact(path, self._repo()):
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
            run_git(["worktree", "prune"], self.common_dir)
        return done

    def disk_usage(self) -> int:
        """Bytes on disk: the worktrees and their records under `.git/worktrees/` (index included)."""
        folders = [self.root] + [a for a in map(git_dir, self.root.glob("wt-*")) if a is not None]
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

    def _claim(self, branches: Sequence[str], start: str | None) -> list[_Claim]:
        """Pick a slot for each branch and lease it, in one hold of the pool lock; no worktree is
        touched yet. All or nothing: when the pool runs out, the slots picked so far go back, and
        if worktrees given back are on their way, it waits for them and tries again."""
        while True:
            with self._returned:
                seen = self._taken_back
            try:
                return self._claim_now(branches, start)
            except PoolExhausted:
                if not self._wait_for_returns(seen):
                    raise

    def _claim_now(self, branches: Sequence[str], start: str | None) -> list[_Claim]:
        repo = self._repo()
        tips = {branch: repo.ref_target(f"refs/heads/{branch}") for branch in branches}
        for branch, tip in tips.items():
            if tip is None and start is None:
                raise GitError(f"branch {branch!r} does not exist and no commit was given to start it at")
        claims: list[_Claim] = []
        with self._lock:
            existing = [branch for branch, tip in tips.items() if tip is not None]
            if existing:  # a branch that does not exist yet cannot be checked out anywhere
                checked_out, leased = repo.checked_out_branches(), set(self.leases().values())
                for branch in existing:
                    if branch in leased or branch in checked_out:
                        where = checked_out.get(branch, "a pooled worktree")
                        raise GitError(f"branch {branch!r} is already checked out in {where}")
            slots, markers = self._listing()
            try:
                for branch in branches:
                    slot, at = self._idle_slot(slots, markers)
                    _write(self._marker(slot, "lease"), branch)
                    markers.add(f"{slot}.lease")
                    tip = tips[branch]
                    claims.append(_Claim(slot, self.root / slot, branch, tip, tip or start or "", at))
            except BaseException:
                for claim in claims:
                    self._unclaim(claim)
                raise
        return claims

    def _give_back_loop(self) -> None:
        while (item := self._returns.get()) is not None:
            try:
                known_clean = item.committed and self.keep_ignored
                self._release_path(item.worktree.slot, known_clean, commit=item.commit)
            except Exception as exc:  # the slot stays leased: `repair` cleans it at the next start
                self._on_error(f"could not take back worktree {item.worktree.slot}: {exc}")
            finally:
                with self._returned:
                    self._pending -= 1
                    self._taken_back += 1
                    self._returned.notify_all()

    def _wait_for_returns(self, seen: int) -> bool:
        """Wait until a worktree given back since `seen` is clean (True at once if one is already);
        False at once if none is on its way."""
        with self._returned:
            if self._taken_back == seen and not self._pending:
                return False
            return self._returned.wait_for(lambda: self._taken_back != seen, timeout=RETURN_PATIENCE_S)

    def _repo(self) -> Repo:
        """This thread's `Repo`: a libgit2 object is used by one thread at a time, and the pool is used
        by the daemon's loop, its verify thread and the pool's own threads."""
        if threading.current_thread() is self._owner:
            return self.repo
        if not hasattr(self._local, "repo"):
            self._local.repo = Repo.at(self.common_dir)
        return self._local.repo

    def _unclaim(self, claim: _Claim) -> None:
        """Give back a slot picked but never touched: idle again at its commit, or never made."""
        if claim.at is not None:
            self._mark_clean(claim.slot, claim.at)
        else:
            self._marker(claim.slot, "lease").unlink(missing_ok=True)

    def _prepare(self, claim: _Claim) -> None:
        """Make the claimed worktree or move it to its commit, and point its HEAD at the branch (made
        by `_hand_out` if it is new): the slow part, safe to run in a thread."""
        if claim.at is None:
            with self._lock:  # two `git worktree add` at once race inside git (.git/worktrees/)
                try:
                    self._create(claim.path, claim.target)
                except BaseException:
                    self._destroy(claim.slot)
                    raise
        else:
            self._move(claim.path, claim.at, claim.target)
        pygit2.Repository(str(claim.path)).set_head(f"refs/heads/{claim.branch}")

    def _hand_out(self, claim: _Claim) -> Worktree:
        if claim.tip is None:
            try:
                self._repo().create_branch(claim.branch, claim.target)
            except BaseException:
                self._release_path(claim.slot)
                raise
        return Worktree(claim.slot, claim.path, claim.branch)

    def _idle_slot(self, slots: set[str], markers: set[str]) -> tuple[str, str | None]:
        """(slot, the commit it is at), or a new slot name and None; the caller holds the lock."""
        for slot in sorted(slots, key=_slot_number):
            if f"{slot}.clean" in markers and f"{slot}.lease" not in markers:
                clean = self._marker(slot, "clean")
                try:
                    at = clean.read_text().strip()
                except FileNotFoundError:
                    continue
                clean.unlink()
                markers.discard(f"{slot}.clean")
                return slot, at
        used = slots | {m.removesuffix(".lease") for m in markers if m.endswith(".lease")}  # and being made
        if len(used) >= self.size:
            raise PoolExhausted(
                f"all {self.size} pooled worktrees are in use; raise the limits in .swarm/config.yaml "
                "or wait for an agent to finish"
            )
        return _free_slot_name(used), None

    def _listing(self) -> tuple[set[str], set[str]]:
        """(slot folders, marker file names), in one pass over the pool folder."""
        slots, markers = set(), set()
        with os.scandir(self.root) as entries:
            for entry in entries:
                if SLOT.fullmatch(entry.name) and entry.is_dir():
                    slots.add(entry.name)
                elif entry.name.endswith((".lease", ".clean")):
                    markers.add(entry.name)
        return slots, markers

    def _marker(self, slot: str, kind: str) -> Path:
        return self.root / f"{slot}.{kind}"

    def _create(self, path: Path, commit: str) -> None:
        run_git(["worktree", "add", "--detach", "--quiet", str(path), commit], self.common_dir)

    def _move(self, path: Path, at: str, target: str) -> None:
        """Move a clean worktree from `at` to `target`, writing only the files that differ."""
        if at != target and not move_in_process(path, at, target):
            proc = run_git(["read-tree", "-m", "-u", at, target], path, ok_codes=(0, 128))
            failpoints.reached("pool:move")
            if proc.returncode != 0:
                # Most likely an ignored file stands where the target has a tracked one: reset
                # overwrites it. Anything worse makes reset fail too, and that error is raised.
                run_git(["reset", "--hard", "--quiet", target], path)

    def _release_path(self, slot: str, known_clean: bool = False, commit: str | None = None) -> None:
        """Detach the slot's HEAD at `commit` (default: where HEAD is) and clean it, unless known clean."""
        repo = self._repo()
        path = self.root / slot
        if not known_clean and not self._intact(path, repo):  # git just committed in a known clean one
            self._destroy(slot)
            return
        worktree = pygit2.Repository(str(path))
        if commit is None:
            # On a branch deleted meanwhile, HEAD is unborn: any commit will do, the next acquire moves it.
            known_clean = known_clean and not worktree.head_is_unborn
            commit = str(worktree.head.target) if not worktree.head_is_unborn else repo.head_commit()
        worktree.set_head(pygit2.Oid(hex=commit))  # detached: the branch is free for others
        if not known_clean:
            run_git(["reset", "--hard", "--quiet", commit], path)
            failpoints.reached("pool:reset")
            run_git(["clean", "-ffdq" + ("" if self.keep_ignored else "x")], path)
        self._mark_clean(slot, commit)

    def _mark_clean(self, slot: str, commit: str) -> None:
        _write(self._marker(slot, "clean"), commit)
        self._marker(slot, "lease").unlink(missing_ok=True)

    def _intact(self, path: Path, repo: Repo) -> bool:
        """A worktree a crash may have cut short during `git worktree add` lacks its HEAD or index."""
        admin = git_dir(path)
        if admin is None or not (admin / "HEAD").is_file() or not (admin / "index").is_file():
            return False
        try:
            worktree = pygit2.Repository(str(path))
            return worktree.head_is_unborn or worktree.head.target in repo.raw
        except (pygit2.GitError, KeyError):
            return False

    @staticmethod
    def remove_stale_locks(path: Path) -> None:
        """A git command killed mid-write leaves `index.lock` or `HEAD.lock` in a worktree's records.
        Call only when nothing else can be working there (after a crash, under the daemon lock)."""
        admin = git_dir(path)
        if admin is not None:
            for lock in admin.glob("*.lock"):
                lock.unlink(missing_ok=True)

    def _orphaned_admin_dirs(self) -> list[Path]:
        """Records under `.git/worktrees/` for pool folders that are gone (a `worktree add` killed
        early stays locked, so `git worktree prune` alone would keep it)."""
        orphans = []
        for admin in (self.common_dir / "worktrees").glob("*"):
            try:
                checkout = Path((admin / "gitdir").read_text().strip()).parent
            except (FileNotFoundError, NotADirectoryError):
                continue
            if checkout.parent.resolve() == self.root.resolve() and not checkout.exists():
                orphans.append(admin)
        return orphans

    def _destroy(self, slot: str) -> None:
        path = self.root / slot
        admin = git_dir(path)
        if admin is not None:
            shutil.rmtree(admin, ignore_errors=True)
        shutil.rmtree(path, ignore_errors=True)
        for kind in ("lease", "clean"):
            self._marker(slot, kind).unlink(missing_ok=True)


def _free_slot_name(used: set[str]) -> str:
    numbers = {_slot_number(slot) for slot in used}
    return f"wt-{min(set(range(1, len(numbers) + 2)) - numbers)}"


def _slot_number(slot: str) -> int:
    return int(slot.split("-")[1])


def _write(path: Path, text: str) -> None:
    """Atomically: a crash leaves the old file or the new one, never half of one."""
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(text)
    os.replace(tmp, path)
