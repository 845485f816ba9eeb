"""The worktree pool: handing out, taking back, reuse, the size bound, and repair after kill -9."""

from __future__ import annotations

import os
import random
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import pytest
from gitutil import git, write

from swarmd.git.pool import PoolExhausted, WorktreePool
from swarmd.git.worktree import clean_head, move_in_process
from swarmd.git.repo import Repo


@pytest.fixture
def repo(repo_dir: Path) -> Repo:
    write(repo_dir, {".gitignore": "build/\n"})
    git(repo_dir, "add", "-A")
    git(repo_dir, "commit", "-qm", "ignore build")
    return Repo.discover(repo_dir)


def commit_on_main(repo: Repo, files: dict[str, str]) -> str:
    write(repo.workdir, files)
    git(repo.workdir, "add", "-A")
    git(repo.workdir, "commit", "-qm", "more")
    return git(repo.workdir, "rev-parse", "HEAD")


def status(path: Path) -> str:
    return git(path, "status", "--porcelain", "--untracked-files=all")


def test_acquire_gives_a_clean_worktree_on_a_new_branch(repo: Repo) -> None:
    pool = WorktreePool(repo, size=3)
    head = repo.head_commit()
    wt = pool.acquire("swarm/task/1", head)
    assert git(wt.path, "symbolic-ref", "HEAD") == "refs/heads/swarm/task/1"
    assert git(wt.path, "rev-parse", "HEAD") == head and status(wt.path) == ""
    assert wt.path.parent == repo.swarm_dir / "pool"
    assert status(repo.workdir) == "", "the user's working tree is untouched"


def test_a_released_worktree_is_reused_clean_and_keeps_ignored_files(repo: Repo) -> None:
    pool = WorktreePool(repo, size=3)
    first = repo.head_commit()
    wt = pool.acquire("swarm/task/1", first)
    write(wt.path, {"work.txt": "done\n", "build/out.o": "object\n"})
    git(wt.path, "add", "work.txt")
    git(wt.path, "commit", "-qm", "work")
    write(wt.path, {"README.md": "scribbled\n", "stray.txt": "left behind\n", "build/cache/x": "1\n"})
    pool.release(wt)
    assert git(repo.workdir, "rev-parse", "swarm/task/1") != first, "the branch keeps the work"

    second = commit_on_main(repo, {"src/more.py": "y = 2\n"})
    again = pool.acquire("swarm/task/2", second)
    assert again.path == wt.path, "the same worktree is reused"
    assert git(again.path, "rev-parse", "HEAD") == second
    assert status(again.path) == "" and not (again.path / "work.txt").exists()
    assert (again.path / "src/more.py").read_text() == "y = 2\n"
    assert (again.path / "build/out.o").read_text() == "object\n", "ignored build outputs survive reuse"


def test_keep_ignored_off_cleans_build_outputs(repo: Repo) -> None:
    pool = WorktreePool(repo, size=2, keep_ignored=False)
    wt = pool.acquire("swarm/task/1", repo.head_commit())
    write(wt.path, {"build/out.o": "object\n"})
    pool.release(wt)
    assert not (wt.path / "build").exists()


def test_an_ignored_file_where_the_new_commit_has_a_tracked_one(repo: Repo) -> None:
    pool = WorktreePool(repo, size=2)
    wt = pool.acquire("swarm/task/1", repo.head_commit())
    write(wt.path, {"build/keep.txt": "ignored\n"})
    pool.release(wt)
    git(repo.workdir, "add", "-f", "build/keep.txt") if (repo.workdir / "build").exists() else None
    write(repo.workdir, {"build/keep.txt": "tracked now\n"})
    git(repo.workdir, "add", "-f", "build/keep.txt")
    git(repo.workdir, "commit", "-qm", "track a build file")
    again = pool.acquire("swarm/task/2", repo.head_commit())
    assert (again.path / "build/keep.txt").read_text() == "tracked now\n"
    assert status(again.path) == ""


def test_an_existing_branch_is_checked_out_at_its_own_tip(repo: Repo) -> None:
    pool = WorktreePool(repo, size=2)
    wt = pool.acquire("swarm/task/1", repo.head_commit())
    write(wt.path, {"a.txt": "a\n"})
    git(wt.path, "add", "-A")
    git(wt.path, "commit", "-qm", "a")
    tip = git(wt.path, "rev-parse", "HEAD")
    pool.release(wt)
    again = pool.acquire("swarm/task/1")
    assert git(again.path, "rev-parse", "HEAD") == tip


def test_the_pool_never_grows_past_its_size(repo: Repo) -> None:
    pool = WorktreePool(repo, size=2)
    head = repo.head_commit()
    held = [pool.acquire(f"swarm/task/{n}", head) for n in (1, 2)]
    with pytest.raises(PoolExhausted, match="all 2 pooled worktrees are in use"):
        pool.acquire("swarm/task/3", head)
    pool.release(held[0])
    pool.acquire("swarm/task/3", head)
    assert len(list((repo.swarm_dir / "pool").glob("wt-*/"))) == 2
    assert pool.disk_usage() > 0


def test_a_branch_is_never_checked_out_twice(repo: Repo) -> None:
    pool = WorktreePool(repo, size=3)
    pool.acquire("swarm/task/1", repo.head_commit())
    with pytest.raises(Exception, match="already checked out"):
        pool.acquire("swarm/task/1")


def test_repair_shrinks_an_oversized_pool_and_prunes_vanished_worktrees(repo: Repo) -> None:
    pool = WorktreePool(repo, size=3)
    pool.warm(3, repo.head_commit())
    shutil.rmtree(repo.swarm_dir / "pool" / "wt-2")
    smaller = WorktreePool(repo, size=1)
    done = smaller.repair()
    assert len(list((repo.swarm_dir / "pool").glob("wt-*/"))) == 1
    assert any("beyond the pool size" in line for line in done)
    assert git(repo.workdir, "worktree", "list", "--porcelain").count("worktree ") == 2


CHURN = """
import sys
from swarmd.git.pool import WorktreePool
from swarmd.git.repo import Repo
repo = Repo.discover(sys.argv[1])
commits = sys.argv[2].split(",")
pool = WorktreePool(repo, size=2)
step = 0
while True:
    for commit in commits:
        step += 1
        wt = pool.acquire(f"swarm/churn/{step}", commit)
        for i in range(40):
            (wt.path / f"scratch{i}.txt").write_text("x")
            (wt.path / "many" / f"f{i}.txt").write_text("changed")
        pool.release(wt)
"""

# Stands in for git on PATH: on the Nth call that creates, moves or cleans a worktree, it starts the
# real git, says so through a FIFO, and waits; the test then kills everything while git works.
GIT_WRAPPER = """#!/bin/bash
case "$1" in
  worktree|read-tree|reset|clean)
    n=$(( $(cat "$SWARMD_TEST_COUNTER" 2>/dev/null || echo 0) + 1 ))
    echo "$n" > "$SWARMD_TEST_COUNTER"
    if [ "$n" = "$SWARMD_TEST_KILL_AT" ]; then
      "$SWARMD_TEST_REAL_GIT" "$@" &
      echo "inside git $1" > "$SWARMD_TEST_FIFO"
      wait
    fi
    ;;
esac
exec "$SWARMD_TEST_REAL_GIT" "$@"
"""


def test_kill_9_in_the_middle_of_pool_resets_is_repaired_by_the_next_start(repo: Repo, tmp_path: Path) -> None:
    one = commit_on_main(repo, {f"many/f{i}.txt": f"{i}\n" for i in range(400)})
    two = commit_on_main(repo, {f"many/f{i}.txt": f"{i} again\n" for i in range(0, 400, 3)})
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    (bin_dir / "git").write_text(GIT_WRAPPER)
    (bin_dir / "git").chmod(0o755)
    fifo = tmp_path / "fifo"
    os.mkfifo(fifo)
    rnd = random.Random(20261123)
    repaired: list[str] = []
    kill_points = [1] + [rnd.randint(2, 12) for _ in range(9)]  # 1: inside the first `git worktree add`
    for kill_at in kill_points:
        counter = tmp_path / f"counter-{len(repaired)}-{kill_at}"
        env = {
            **os.environ,
            "PATH": f"{bin_dir}{os.pathsep}{os.environ['PATH']}",
            "SWARMD_TEST_REAL_GIT": shutil.which("git"),
            "SWARMD_TEST_COUNTER": str(counter),
            "SWARMD_TEST_KILL_AT": str(kill_at),
            "SWARMD_TEST_FIFO": str(fifo),
        }
        child = subprocess.Popen(
            [sys.executable, "-c", CHURN, str(repo.workdir), f"{one},{two}"], env=env, start_new_session=True
        )
        with open(fifo) as signal_from_git:
            assert signal_from_git.readline().startswith("inside git")
        os.killpg(child.pid, signal.SIGKILL)
        child.wait()

        pool = WorktreePool(repo, size=2)
        repaired.extend(pool.repair() or [f"nothing to repair after kill point {kill_at}"])
        for slot in (repo.swarm_dir / "pool").glob("wt-*/"):
            assert status(slot) == "", f"{slot.name} is clean after repair"
        assert pool.leases() == {}
        assert "prunable" not in git(repo.workdir, "worktree", "list", "--porcelain")
        wt = pool.acquire("swarm/after", two)
        assert git(wt.path, "rev-parse", "HEAD") == two and status(wt.path) == ""
        pool.release(wt)
        git(repo.workdir, "branch", "-D", "swarm/after")
    git(repo.workdir, "fsck", "--no-progress")
    assert status(repo.workdir) == ""
    assert not any(line.startswith("nothing") for line in repaired), repaired


def test_a_small_move_is_done_in_process_and_leaves_git_clean(repo: Repo) -> None:
    pool = WorktreePool(repo, size=2)
    first = commit_on_main(repo, {"docs/a.txt": "a\n", "docs/b.txt": "b\n", "gone/only.txt": "x\n"})
    wt = pool.acquire("swarm/task/1", first)
    pool.release(wt)
    git(repo.workdir, "rm", "-q", "gone/only.txt")
    second = commit_on_main(repo, {"docs/a.txt": "changed\n", "new/deep/c.txt": "c\n"})
    assert move_in_process(wt.path, first, second)
    assert (wt.path / "docs/a.txt").read_text() == "changed\n"
    assert (wt.path / "new/deep/c.txt").read_text() == "c\n"
    assert not (wt.path / "gone").exists(), "a folder left empty goes, as with git"
    git(wt.path, "update-ref", "--no-deref", "HEAD", second)
    assert status(wt.path) == "" and git(wt.path, "diff", "--cached", "--name-only") == ""


def test_files_git_would_convert_are_left_to_git(repo: Repo) -> None:
    first = commit_on_main(repo, {".gitattributes": "*.crlf eol=crlf\n", "x.sh": "#!/bin/sh\n"})
    pool = WorktreePool(repo, size=2)
    wt = pool.acquire("swarm/task/1", first)
    pool.release(wt)
    second = commit_on_main(repo, {"notes.crlf": "one\ntwo\n"})
    assert not move_in_process(wt.path, first, second), "eol=crlf changes the bytes written"
    again = pool.acquire("swarm/task/2", second)
    assert (again.path / "notes.crlf").read_bytes() == b"one\r\ntwo\r\n" and status(again.path) == ""
    pool.release(again)
    (repo.workdir / "x.sh").chmod(0o755)
    third = commit_on_main(repo, {})
    assert not move_in_process(again.path, second, third), "a mode change is git's"


def test_a_worktree_given_back_is_waited_for_when_the_pool_is_full(repo: Repo) -> None:
    pool = WorktreePool(repo, size=1)
    head = repo.head_commit()
    wt = pool.acquire("swarm/task/1", head)
    write(wt.path, {"work.txt": "done\n"})
    git(wt.path, "add", "-A")
    git(wt.path, "commit", "-qm", "work")
    tip = git(wt.path, "rev-parse", "HEAD")
    pool.give_back(wt, tip, committed=True)
    git(repo.workdir, "branch", "-D", "swarm/task/1")  # the caller may drop the branch at once
    again = pool.acquire("swarm/task/2", head)  # the only slot: acquire waits for it to be back
    assert again.path == wt.path and git(again.path, "rev-parse", "HEAD") == head
    assert status(again.path) == "" and not (again.path / "work.txt").exists()
    pool.give_back(again, head, committed=False)
    pool.close()
    assert (repo.swarm_dir / "pool" / f"{again.slot}.clean").read_text() == head


def test_a_move_with_something_in_its_way_or_autocrlf_is_left_to_git(repo: Repo) -> None:
    pool = WorktreePool(repo, size=1)
    first = repo.head_commit()
    wt = pool.acquire("swarm/task/1", first)
    write(wt.path, {"build/out.o": "ignored\n", "build/dir/x": "ignored\n"})
    pool.release(wt)
    write(repo.workdir, {"build/out.o/inside.txt": "a folder now\n", "build/dir": "a file now\n"})
    git(repo.workdir, "add", "-f", "build/out.o/inside.txt", "build/dir")
    second = commit_on_main(repo, {"win.bat": "one\r\ntwo\r\n"})
    assert not move_in_process(wt.path, first, second), "ignored files stand where tracked ones go"
    git(repo.workdir, "config", "core.autocrlf", "input")
    assert not move_in_process(wt.path, first, second), "autocrlf=input would index win.bat changed"
    again = pool.acquire("swarm/task/2", second)
    assert (again.path / "build/out.o/inside.txt").read_text() == "a folder now\n"
    assert (again.path / "win.bat").read_bytes() == b"one\r\ntwo\r\n"
    assert status(again.path) == ""


def test_clean_head_is_known_only_while_head_is_on_the_agents_branch(repo: Repo) -> None:
    pool = WorktreePool(repo, size=1)
    wt = pool.acquire("swarm/task/1", repo.head_commit())
    assert clean_head(wt.path, "swarm/task/1") == repo.head_commit()
    git(wt.path, "checkout", "-q", "-b", "elsewhere")
    assert clean_head(wt.path, "swarm/task/1") is None, "what its files are, only git can tell now"
