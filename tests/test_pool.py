"""The worktree pool: handing out, taking back, reuse, the size bound, worktrees git never sees half
made, and repair after kill -9."""

from __future__ import annotations

import os
import random
import select
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from gitutil import git, write

from swarmd.errors import GitError
from swarmd.git.pool import PoolExhausted, WorktreePool
from swarmd.git.repo import Repo
from swarmd.git.worktree import clean_head, git_dir, move_in_process
from swarmd.logs import errors_to_file


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
    assert (wt.path / "build/keep.txt").read_text() == "ignored\n", "kept: it stands in the way below"
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
    with pytest.raises(GitError, match="already checked out"):
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


# Put before a child's script: every atomic write of swarmd's (temp file + os.replace) and every rename
# also counts as a step, after which the child says so through the FIFO and waits to be killed: on its
# stdin, a pipe the test holds open and never writes to (closed only when the test is gone).
STOP_AFTER_WRITES = """
import os, select, sys
from pathlib import Path

def _stepping(real):
    def step(src, dst, *args, **kwargs):
        real(src, dst, *args, **kwargs)
        counter = Path(os.environ["SWARMD_TEST_COUNTER"])
        n = int(counter.read_text()) + 1 if counter.exists() else 1
        counter.write_text(str(n))
        if str(n) == os.environ["SWARMD_TEST_KILL_AT"]:
            with open(os.environ["SWARMD_TEST_FIFO"], "w") as fifo:
                fifo.write(f"after {real.__name__} to {dst}\\n")
            select.select([sys.stdin], [], [], 600)  # the kill, or EOF once the test is gone
            os._exit(1)
    return step

os.replace, os.rename = _stepping(os.replace), _stepping(os.rename)
"""


class Killer:
    """Starts a child script with the git wrapper on PATH, waits until it reports its kill point
    through a FIFO, and kills its whole process group there with SIGKILL."""

    def __init__(self, tmp_path: Path) -> None:
        self.tmp_path = tmp_path
        self.bin_dir = tmp_path / "bin"
        self.bin_dir.mkdir()
        (self.bin_dir / "git").write_text(GIT_WRAPPER)
        (self.bin_dir / "git").chmod(0o755)
        self.fifo = tmp_path / "fifo"
        os.mkfifo(self.fifo)
        self.runs = 0

    def run_and_kill(self, script: str, args: list[str], kill_at: int, timeout: float = 120) -> str:
        """The line the child wrote when it reached step `kill_at`; fails (never hangs) if it exits first."""
        self.runs += 1
        env = {
            **os.environ,
            "PATH": f"{self.bin_dir}{os.pathsep}{os.environ['PATH']}",
            "SWARMD_TEST_REAL_GIT": shutil.which("git") or "git",
            "SWARMD_TEST_COUNTER": str(self.tmp_path / f"counter-{self.runs}"),
            "SWARMD_TEST_KILL_AT": str(kill_at),
            "SWARMD_TEST_FIFO": str(self.fifo),
        }
        stderr = self.tmp_path / f"stderr-{self.runs}"
        reader = os.open(self.fifo, os.O_RDONLY | os.O_NONBLOCK)  # opened first: the child's open never blocks
        try:
            with stderr.open("w") as err:
                child = subprocess.Popen([sys.executable, "-c", script, *args], env=env, stderr=err,
                                         stdin=subprocess.PIPE, start_new_session=True)
            try:
                line = self._read_line(reader, child, time.monotonic() + timeout)
                exited = child.poll()
            finally:
                try:
                    os.killpg(child.pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass  # the child and all its group exited by themselves
                child.wait()
                assert child.stdin is not None
                child.stdin.close()
        finally:
            os.close(reader)
        if line is None:
            why = f"exited with {exited}" if exited is not None else f"said nothing for {timeout} s"
            pytest.fail(f"the child {why} before step {kill_at}:\n{stderr.read_text()[-3000:]}")
        return line

    @staticmethod
    def _read_line(reader: int, child: subprocess.Popen[bytes], deadline: float) -> str | None:
        data = b""
        while b"\n" not in data:
            if child.poll() is not None or time.monotonic() > deadline:
                return None
            if select.select([reader], [], [], 0.1)[0]:
                data += os.read(reader, 4096)  # b"" once a writer closed: the loop looks at the child again
        return data.decode()


def assert_git_sees_no_half_made_worktree(repo: Repo, *, all_clean: bool = False) -> None:
    """Right after a kill, before any repair: fsck is clean, and git works in each worktree it lists
    (with `all_clean`, where no worktree was handed out: each is clean, so none has part of its files)."""
    git(repo.workdir, "fsck", "--strict", "--no-progress")
    listed = git(repo.workdir, "worktree", "list", "--porcelain")
    assert "prunable" not in listed, listed
    for line in listed.splitlines():
        if line.startswith("worktree ") and Path(line[len("worktree "):]) != repo.workdir:
            found = status(Path(line[len("worktree "):]))
            assert found == "" or not all_clean, f"{line} is listed but not whole: {found[:200]}"


def test_kill_9_in_the_middle_of_pool_resets_is_repaired_by_the_next_start(repo: Repo, tmp_path: Path) -> None:
    one = commit_on_main(repo, {f"many/f{i}.txt": f"{i}\n" for i in range(400)})
    two = commit_on_main(repo, {f"many/f{i}.txt": f"{i} again\n" for i in range(0, 400, 3)})
    killer = Killer(tmp_path)
    rnd = random.Random(20261123)
    repaired: list[str] = []
    kill_points = [1] + [rnd.randint(2, 12) for _ in range(9)]  # 1: inside the first worktree's checkout
    for kill_at in kill_points:
        assert killer.run_and_kill(CHURN, [str(repo.workdir), f"{one},{two}"], kill_at).startswith("inside git")
        assert_git_sees_no_half_made_worktree(repo)

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


MAKE_AND_REMOVE = STOP_AFTER_WRITES + """
import sys
from swarmd.git.pool import WorktreePool
from swarmd.git.repo import Repo
repo = Repo.discover(Path(sys.argv[1]))
while True:
    WorktreePool(repo, size=2).warm(2, sys.argv[2])  # makes two worktrees
    WorktreePool(repo, size=0).repair()  # and removes them
"""
STEPS_PER_ROUND = 19  # per worktree 7 writes and a `git read-tree`; 2 renames and a `git worktree prune`


def test_a_kill_9_while_worktrees_are_made_or_removed_leaves_nothing_git_rejects(
    repo: Repo, tmp_path: Path
) -> None:
    commit = commit_on_main(repo, {f"many/f{i}.txt": f"{i}\n" for i in range(200)})
    killer = Killer(tmp_path)
    admin_dirs = repo.common_dir / "worktrees"
    repaired: list[str] = []
    for kill_at in range(1, STEPS_PER_ROUND + 3):  # after every step of a round, and into the next one
        killer.run_and_kill(MAKE_AND_REMOVE, [str(repo.workdir), commit], kill_at)
        assert_git_sees_no_half_made_worktree(repo, all_clean=True)

        pool = WorktreePool(repo, size=2)
        repaired += pool.repair()
        assert not list((repo.swarm_dir / "pool").glob(".removing-*"))
        for admin in admin_dirs.glob("*"):
            assert (admin / "gitdir").exists() and not (admin / "locked").exists(), admin.name
        wt = pool.acquire("swarm/after", commit)
        assert git(wt.path, "rev-parse", "HEAD") == commit and status(wt.path) == ""
        pool.release(wt)
        git(repo.workdir, "branch", "-D", "swarm/after")
        WorktreePool(repo, size=0).repair()  # the next child starts from an empty pool
        assert not list(admin_dirs.glob("*")) and not list((repo.swarm_dir / "pool").glob("wt-*"))
    git(repo.workdir, "fsck", "--strict", "--no-progress")
    # Kills landed between every two steps of making a worktree, and while its record was removed.
    for repair_said in ("removed the git records of a half-made worktree swarmd-wt-1",
                        "removed broken worktree wt-1", "unlocked worktree wt-1", "dropped wt-1.lease",
                        "cleaned worktree wt-2"):
        assert any(line.startswith(repair_said) for line in repaired), (repair_said, repaired)


def test_git_takes_pooled_worktrees_for_its_own(repo: Repo, tmp_path: Path) -> None:
    head = repo.head_commit()
    theirs = tmp_path / "swarmd-wt-1"  # the user's own worktree, whose id is the one the pool would take
    git(repo.workdir, "worktree", "add", "-q", "--detach", str(theirs), head)
    pool = WorktreePool(repo, size=2)
    pool.warm(2, head)
    records = {p.name: Path((p / "gitdir").read_text().strip()).parent
               for p in (repo.common_dir / "worktrees").iterdir()}
    assert records == {"swarmd-wt-1": theirs, "swarmd-wt-1-2": pool.root / "wt-1",
                       "swarmd-wt-2": pool.root / "wt-2"}
    wt = pool.acquire("swarm/task/1", head)
    write(wt.path, {"work.txt": "done\n"})
    git(wt.path, "add", "-A")
    git(wt.path, "commit", "-qm", "work")
    git(repo.workdir, "worktree", "prune")
    git(repo.workdir, "gc", "-q")  # which prunes worktrees too
    listed = git(repo.workdir, "worktree", "list", "--porcelain")
    assert listed.count("worktree ") == 4 and "locked" not in listed and "prunable" not in listed
    head_now = git(wt.path, "rev-parse", "HEAD")
    assert f"worktree {wt.path}\nHEAD {head_now}\nbranch refs/heads/swarm/task/1" in listed
    assert status(wt.path) == "" and status(pool.root / "wt-2") == ""
    pool.release(wt)
    removed = WorktreePool(repo, size=0).repair()
    assert removed == [f"removed worktree wt-{n} beyond the pool size of 0" for n in (1, 2)]
    assert [p.name for p in (repo.common_dir / "worktrees").iterdir()] == ["swarmd-wt-1"], "theirs is kept"
    assert status(theirs) == ""
    git(repo.workdir, "fsck", "--strict", "--no-progress")


def test_worktrees_the_pool_made_with_git_worktree_add_keep_working(repo: Repo) -> None:
    head = repo.head_commit()
    root = repo.swarm_dir / "pool"
    for slot in ("wt-1", "wt-2"):  # as the pool made them before ADR 0018: records `wt-1`, `wt-2`
        git(repo.workdir, "worktree", "add", "-q", "--detach", str(root / slot), head)
    (root / "wt-1.clean").write_text(head)
    write(root / "wt-2", {"stray.txt": "left by a crash\n"})  # no marker: its state is unknown
    pool = WorktreePool(repo, size=2)
    assert pool.repair() == ["cleaned worktree wt-2"]
    second = commit_on_main(repo, {"src/more.py": "y = 2\n"})
    wt = pool.acquire("swarm/task/1", second)
    assert wt.path == root / "wt-1" and git_dir(wt.path) == repo.common_dir / "worktrees" / "wt-1"
    assert git(wt.path, "rev-parse", "HEAD") == second and status(wt.path) == ""
    pool.release(wt)
    assert WorktreePool(repo, size=1).repair() == ["removed worktree wt-2 beyond the pool size of 1"]
    assert [p.name for p in (repo.common_dir / "worktrees").iterdir()] == ["wt-1"]
    git(repo.workdir, "fsck", "--strict", "--no-progress")


def test_an_error_on_the_pools_thread_is_logged_with_its_traceback(repo: Repo) -> None:
    said: list[str] = []
    pool = WorktreePool(repo, size=1, on_error=said.append)
    head = repo.head_commit()
    wt = pool.acquire("swarm/task/1", head)
    write(wt.path, {"stray.txt": "x\n"})
    admin = git_dir(wt.path)
    assert admin is not None
    (admin / "index.lock").write_text("")  # `git reset --hard` cannot write the index
    with errors_to_file(repo.swarm_dir) as log:
        pool.give_back(wt, head, committed=False)
        pool.close()
    [line] = said
    assert line.startswith("could not take back worktree wt-1: `git reset") and "index.lock" in line
    assert line.endswith("(traceback in .git/swarm/errors.log)")
    text = log.read_text()
    assert "swarmd.git.returns: could not take back worktree wt-1" in text
    assert "Traceback (most recent call last)" in text
    assert pool.leases() == {} and not (wt.path).exists(), "a worktree git cannot clean is removed, not leaked"
    git(repo.workdir, "branch", "-D", "swarm/task/1")  # detached by give_back itself
    again = pool.acquire("swarm/task/2", head)  # the only slot is free again: made anew
    assert status(again.path) == "" and not (again.path / "stray.txt").exists()
    git(repo.workdir, "fsck", "--strict", "--no-progress")


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
