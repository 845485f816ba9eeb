"""A bounded pool of git worktrees under `.git/swarm/pool/`, reused from task to task: handing them out
and taking them back (ADR 0006).

Creating a worktree writes every file of the repository (0.2-0.7 s at 20,000 files, far more on a busy
disk); moving a clean one to another commit writes only the files that differ. So worktrees are made
once, kept, and cleaned when a task gives one back, off the path of the next request. Ignored files
(build outputs) survive reuse unless `keep_ignored` is off, so builds stay incremental.

The parts live beside this module: the slots' marker files and states (`slots.py`), which slot each
branch gets (`claims.py`), what is done to one worktree's files and git record, made and removed so
that git never sees one half made (`linked.py`, ADR 0018), releases on the pool's own thread
(`returns.py`), and what a start repairs after a crash (`repair.py`). This module holds them together:
the pool lock, the threads, and a `Repo` per thread.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor, as_completed
from dataclasses import dataclass
from pathlib import Path

import pygit2
from filelock import FileLock

from swarmd.errors import GitError
from swarmd.git import linked
from swarmd.git.claims import Claim, PoolExhausted, claim_slots, unclaim
from swarmd.git.repair import repair
from swarmd.git.repo import Repo
from swarmd.git.returns import Return, Returns
from swarmd.git.slots import Markers

__all__ = ["PoolExhausted", "Worktree", "WorktreePool"]


@dataclass(frozen=True)
class Worktree:
    slot: str
    path: Path
    branch: str


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
        self._markers = Markers(self.root)
        # Held for milliseconds at a time by several threads: retry at 5 ms, not filelock's 50.
        self._lock = FileLock(self.root / "pool.lock", poll_interval=0.005)
        self._returns = Returns(self._take_back, on_error)  # on_error: for the daemon's log

    remove_stale_locks = staticmethod(linked.remove_stale_locks)

    # -- handing out and taking back ------------------------------------------------------------

    def acquire(self, branch: str, start: str | None = None) -> Worktree:
        """A clean worktree on `branch`: the branch's own tip if it exists, else a new branch at `start`."""
        [claim] = self._claim([branch], start)
        try:
            self._prepare(claim)
        except BaseException:
            self._release_slot(claim.slot)  # leave the slot in a state `repair` understands
            raise
        return self._hand_out(claim)

    def acquire_many(self, branches: Sequence[str], start: str, parallel: int = 3) -> Iterator[Worktree]:
        """Worktrees for several branches (as `acquire`), each yielded as soon as it is ready. Moving a
        worktree is git writing files; doing `parallel` at a time overlaps that with whatever the caller
        does with the worktrees already yielded (starting agents, on a 2-core machine). Close the
        iterator early (`contextlib.closing`) and the worktrees not yet yielded go back to the pool."""
        claims = self._claim(branches, start)
        futures: dict[Future[None], Claim] = {}
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
                    unclaim(self._markers, claim)
                else:
                    self._release_slot(claim.slot)

    def release(self, worktree: Worktree) -> None:
        """Take a worktree back: detach it from its branch (which keeps every commit) and clean it."""
        self._release_slot(worktree.slot)

    def give_back(self, worktree: Worktree, commit: str, *, committed: bool) -> None:
        """`release` at `commit` (the branch's head when its agent finished), the cleaning on the pool's
        own thread (`returns.py`). HEAD is detached here, before this returns, so the caller may rename
        or delete the branch at once. `committed`: everything in it was just committed at `commit` on
        its branch, so unless ignored files must go too, it is clean already and no git command runs.
        `acquire` waits for these when no slot is idle; `close` waits for them all."""
        try:
            linked.detach(pygit2.Repository(str(worktree.path)), commit)
        except (pygit2.GitError, OSError):
            pass  # a broken worktree: its release on the pool's thread finds out, and says why
        self._returns.put(Return(worktree.slot, commit, committed and self.keep_ignored))

    def close(self) -> None:
        """Finish what was given back (what a crash leaves unfinished, `repair` does at the next start)."""
        self._returns.close()

    def warm(self, count: int, commit: str) -> None:
        """Create idle worktrees at `commit` until the pool holds `count` (at most its size)."""
        while True:
            with self._lock:
                listing = self._markers.listing()
                if len(listing.used()) >= min(count, self.size):
                    return
                slot = listing.free_name()
                self._markers.lease(slot, "")
                self._create(slot, commit)
                self._markers.mark_clean(slot, commit)

    def repair(self) -> list[str]:
        """Make every slot usable again after a crash; say what was done (`repair.py`). Any lease is
        taken to be stale: call this only while no agent works in the pool (the daemon's start)."""
        with self._lock:
            return repair(self._markers, self.common_dir, self._repo(), self.size, self._release_slot)

    def disk_usage(self) -> int:
        """Bytes on disk: the worktrees and their records under `.git/worktrees/` (index included)."""
        return linked.disk_usage(self.root, self.root.glob("wt-*"))

    def leases(self) -> dict[str, str]:
        """slot -> branch for every worktree handed out."""
        return self._markers.leases()

    # -- the parts ---------------------------------------------------------------------------

    def _claim(self, branches: Sequence[str], start: str | None) -> list[Claim]:
        """Pick a slot for each branch and lease it, in one hold of the pool lock; no worktree is
        touched yet. All or nothing: when the pool runs out, the slots picked so far go back, and
        if worktrees given back are on their way, it waits for them and tries again."""
        while True:
            seen = self._returns.done()
            try:
                return claim_slots(self._lock, self._markers, self.size, self._repo(), branches, start)
            except PoolExhausted:
                if not self._returns.wait(seen):
                    raise

    def _repo(self) -> Repo:
        """This thread's `Repo`: a libgit2 object is used by one thread at a time, and the pool is used
        by the daemon's loop, its verify thread and the pool's own threads."""
        if threading.current_thread() is self._owner:
            return self.repo
        if not hasattr(self._local, "repo"):
            self._local.repo = Repo.at(self.common_dir)
        return self._local.repo

    def _prepare(self, claim: Claim) -> None:
        """Make the claimed worktree or move it to its commit, and point its HEAD at the branch (made
        by `_hand_out` if it is new): the slow part, safe to run in a thread."""
        if claim.at is None:
            with self._lock:
                self._create(claim.slot, claim.target)
        else:
            linked.move(claim.path, claim.at, claim.target)
        pygit2.Repository(str(claim.path)).set_head(f"refs/heads/{claim.branch}")

    def _create(self, slot: str, commit: str) -> None:
        """Make a slot's worktree; the caller holds the pool lock, so worktrees are made one at a time
        (each writes every file: several at once would each be ready later)."""
        try:
            linked.create(self.common_dir, self.root / slot, commit)
        except BaseException:
            self._markers.forget(slot)
            raise

    def _hand_out(self, claim: Claim) -> Worktree:
        if claim.tip is None:
            try:
                self._repo().create_branch(claim.branch, claim.target)
            except BaseException:
                self._release_slot(claim.slot)
                raise
        return Worktree(claim.slot, claim.path, claim.branch)

    def _take_back(self, item: Return) -> None:
        self._release_slot(item.slot, item.known_clean, item.commit)

    def _release_slot(self, slot: str, known_clean: bool = False, commit: str | None = None) -> None:
        """Detach the slot's HEAD at `commit` (default: where HEAD is) and clean it, unless known clean."""
        repo = self._repo()
        path = self.root / slot
        if not known_clean and not linked.intact(path, repo):  # git just committed in a known clean one
            linked.destroy(path)
            self._markers.forget(slot)
            return
        worktree = pygit2.Repository(str(path))
        if commit is None:
            # On a branch deleted meanwhile, HEAD is unborn: any commit will do, the next acquire moves it.
            known_clean = known_clean and not worktree.head_is_unborn
            commit = str(worktree.head.target) if not worktree.head_is_unborn else repo.head_commit()
        try:
            linked.detach(worktree, commit)
            if not known_clean:
                linked.clean(path, commit, self.keep_ignored)
        except (GitError, OSError, pygit2.GitError):
            # What an agent left that git cannot clean (a corrupt index, files it may not delete): the
            # worktree goes, so the slot is free again and a fresh one is made when needed.
            linked.destroy(path)
            self._markers.forget(slot)
            raise
        self._markers.mark_clean(slot, commit)

