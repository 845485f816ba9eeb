"""Case (c): a worktree ready for a new task, `WorktreePool.acquire` of a worktree a finished task gave back
against `git worktree add -b`; the pool's `release`, off the request path, is timed on its own."""

from __future__ import annotations

import os
import time
from pathlib import Path

from gitbench.bench import Bench
from gitbench.timing import Samples, ms_since, quiet_disk
from gitcmd import git

from swarmd.git.pool import WorktreePool


def finish_task(b: Bench, path: Path, rep: int) -> None:
    """What an agent leaves behind: two commits on its branch, build outputs, a stray file."""
    for number in (1, 2):
        name = b.pick()
        target = path / name
        target.write_bytes(target.read_bytes() + f"# task {rep} edit {number}\n".encode())
        if number == 2:
            (target.parent / f"task_{rep}_new.py").write_text("VALUE = 1\n")
        git(path, "add", "-A")
        git(path, "commit", "-q", "-m", f"task {rep}: part {number}")
    build = path / "build" / "obj"
    build.mkdir(parents=True, exist_ok=True)
    for k in range(40):
        (build / f"unit_{k}.o").write_bytes(os.urandom(2048) if k % 4 == rep % 4 else b"\0" * 2048)
    (path / "build" / f"app-{rep}.bin").write_bytes(b"\x7fELF" + bytes(4096))
    (path / "scratch-notes.txt").write_text("an untracked, not ignored file the agent forgot\n")


def case_c(b: Bench, reps: int, slow: int, s: Samples) -> None:
    pool = WorktreePool(b.daemon, size=2)
    tip = b.main
    pool.warm(1, tip)
    worktree = pool.acquire("bench/c/task-0", start=tip)
    fresh_root = b.path.parent / "fresh-worktrees"
    fresh_root.mkdir()
    quiet_disk()
    for rep in range(1, reps + 2):  # round 1 warms up and is not counted
        finish_task(b, worktree.path, rep)
        for _ in range(3):
            tip, _ = b.change_files(tip, 2, "the integration tip moved")
        start = time.perf_counter()
        pool.release(worktree)
        released = ms_since(start)
        start = time.perf_counter()
        worktree = pool.acquire(f"bench/c/task-{rep}", start=tip)
        acquired = ms_since(start)
        assert git(worktree.path, "rev-parse", "HEAD") == tip
        assert git(worktree.path, "symbolic-ref", "HEAD") == f"refs/heads/bench/c/task-{rep}"
        assert git(worktree.path, "status", "--porcelain") == "", "the pooled worktree is not clean"
        assert (worktree.path / "build" / "obj" / "unit_0.o").exists(), "ignored build files were dropped"
        if rep > 1:
            s.add("c/swarmd acquire", acquired)
            s.add("c/swarmd release", released)
            s.add("c/swarmd release + acquire", released + acquired)
        if rep <= slow + 1:
            fresh = fresh_root / f"wt-{rep}"
            start = time.perf_counter()
            git(b.path, "worktree", "add", "-q", "-b", f"bench/c/fresh-{rep}", str(fresh), tip)
            elapsed = ms_since(start)
            assert git(fresh, "rev-parse", "HEAD") == tip
            if rep > 1:
                s.add("c/git worktree add", elapsed)
            quiet_disk()
