"""Commits and landings on the integration branch: compare-and-swap, merges, replays, conflicts."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from gitutil import git, write

from swarmd.errors import GitError
from swarmd.git.landing import commit_changes, land_branch, start_branch
from swarmd.git.repo import Repo

BRANCH = "swarm/main"


@pytest.fixture
def repo(repo_dir: Path) -> Repo:
    repo = Repo.discover(repo_dir)
    start_branch(repo, BRANCH, repo.head_commit(), {".swarm/goal.md": b"goal\n"}, "start")
    return repo


def worker_branch(repo: Repo, name: str, base: str, files: dict[str, str], commits: int = 1) -> str:
    """A worker's branch made with the git CLI in a worktree of its own, as an agent would."""
    worktree = repo.workdir.parent / f"wt-{name.replace('/', '-')}"
    git(repo.workdir, "worktree", "add", "-q", "-b", name, str(worktree), base)
    for n in range(commits):
        write(worktree, {path: f"{text}{n}\n" for path, text in files.items()})
        git(worktree, "add", "-A")
        git(worktree, "commit", "-q", "-m", f"{name} step {n}")
    git(repo.workdir, "worktree", "remove", "--force", str(worktree))
    return git(repo.workdir, "rev-parse", name)


def test_commit_changes_adds_one_commit_and_skips_no_op(repo: Repo) -> None:
    tip = repo.branch_tip(BRANCH)
    landed = commit_changes(repo, BRANCH, lambda t: {".swarm/tasks/1.yaml": b"id: '1'\n"}, "add task 1")
    assert landed.commit is not None and landed.tries == 1
    assert git(repo.workdir, "rev-parse", f"{landed.commit}~1") == tip
    assert git(repo.workdir, "show", f"{BRANCH}:.swarm/tasks/1.yaml") == "id: '1'"
    again = commit_changes(repo, BRANCH, lambda t: {".swarm/tasks/1.yaml": b"id: '1'\n"}, "same")
    assert again.commit is None and repo.branch_tip(BRANCH) == landed.commit


def test_commit_changes_deletes_and_prunes_empty_folders(repo: Repo) -> None:
    commit_changes(repo, BRANCH, lambda t: {"a/b/c.txt": b"x"}, "add")
    commit_changes(repo, BRANCH, lambda t: {"a/b/c.txt": None}, "remove")
    assert git(repo.workdir, "ls-tree", "--name-only", BRANCH, "a") == ""


RACER = """
import sys
from swarmd.git.landing import commit_changes
from swarmd.git.repo import Repo
repo = Repo.discover(sys.argv[1])
name = sys.argv[2]
sys.stdin.readline()  # wait for the go, so both processes race from the first commit
for n in range(int(sys.argv[3])):
    commit_changes(repo, "swarm/main", lambda tip: {f"race/{name}/{n}.txt": f"{n}".encode()}, f"{name} {n}")
"""


def test_two_processes_racing_200_commits_each_lose_none(repo: Repo) -> None:
    racers = [
        subprocess.Popen([sys.executable, "-c", RACER, str(repo.workdir), name, "200"], stdin=subprocess.PIPE, text=True)
        for name in ("a", "b")
    ]
    for racer in racers:
        racer.stdin.write("go\n")
        racer.stdin.flush()
    for racer in racers:
        racer.stdin.close()
        assert racer.wait(timeout=120) == 0
    files = git(repo.workdir, "ls-tree", "-r", "--name-only", BRANCH, "race").splitlines()
    assert len(files) == 400
    assert git(repo.workdir, "rev-list", "--count", f"main..{BRANCH}") == str(1 + 400)
    git(repo.workdir, "fsck", "--strict", "--no-progress")


def test_land_a_branch_whose_base_is_the_tip(repo: Repo) -> None:
    tip = repo.branch_tip(BRANCH)
    head = worker_branch(repo, "swarm/task/1", BRANCH, {"src/new.py": "x = "})
    landed = land_branch(repo, BRANCH, head, message="land 1", build=lambda t: {".swarm/tasks/1.yaml": b"done\n"})
    assert landed.commit is not None
    assert git(repo.workdir, "rev-parse", f"{landed.commit}^1", f"{landed.commit}^2").split() == [tip, head]
    assert git(repo.workdir, "show", f"{BRANCH}:src/new.py") == "x = 0"
    assert git(repo.workdir, "show", f"{BRANCH}:.swarm/tasks/1.yaml") == "done"


def test_land_merges_onto_a_tip_that_moved(repo: Repo) -> None:
    base = repo.branch_tip(BRANCH)
    first = worker_branch(repo, "swarm/task/1", base, {"one.txt": "one "})
    second = worker_branch(repo, "swarm/task/2", base, {"two.txt": "two "})
    assert land_branch(repo, BRANCH, first, message="land 1").commit
    landed = land_branch(repo, BRANCH, second, message="land 2")
    assert landed.commit
    assert set(git(repo.workdir, "ls-tree", "--name-only", BRANCH).split()) >= {"one.txt", "two.txt"}
    # the result is the tree git's own merge makes
    assert git(repo.workdir, "rev-parse", f"{landed.commit}^{{tree}}") == git(
        repo.workdir, "merge-tree", "--write-tree", f"{landed.commit}^1", second
    )


def test_land_replays_commits_for_a_linear_history(repo: Repo) -> None:
    base = repo.branch_tip(BRANCH)
    first = worker_branch(repo, "swarm/task/1", base, {"one.txt": "one "})
    second = worker_branch(repo, "swarm/task/2", base, {"two.txt": "two "}, commits=3)
    land_branch(repo, BRANCH, first, message="land 1")
    tip = repo.branch_tip(BRANCH)
    landed = land_branch(
        repo, BRANCH, second, message="land 2", replay_commits=True, build=lambda t: {".swarm/tasks/2.yaml": b"done\n"}
    )
    subjects = git(repo.workdir, "log", "--format=%s", f"{tip}..{landed.commit}").splitlines()
    assert subjects == [f"swarm/task/2 step {n}" for n in (2, 1, 0)]
    parents = git(repo.workdir, "log", "--format=%P", f"{tip}..{landed.commit}").splitlines()
    assert all(len(line.split()) == 1 for line in parents), "replayed commits have one parent each"
    assert git(repo.workdir, "show", f"{BRANCH}:two.txt") == "two 2"
    assert git(repo.workdir, "show", f"{BRANCH}:.swarm/tasks/2.yaml") == "done"
    assert git(repo.workdir, "show", "--format=%an", "-s", BRANCH) == "Test Person", "authors are kept"


def test_a_conflict_names_the_paths_and_writes_nothing(repo: Repo) -> None:
    base = repo.branch_tip(BRANCH)
    first = worker_branch(repo, "swarm/task/1", base, {"README.md": "mine "})
    second = worker_branch(repo, "swarm/task/2", base, {"README.md": "theirs "})
    land_branch(repo, BRANCH, first, message="land 1")
    tip = repo.branch_tip(BRANCH)
    for replay in (False, True):
        landed = land_branch(repo, BRANCH, second, message="land 2", replay_commits=replay)
        assert landed.commit is None and landed.conflicts == ("README.md",)
        assert repo.branch_tip(BRANCH) == tip


def test_a_branch_that_merged_the_tip_lands_with_its_resolution(repo: Repo) -> None:
    base = repo.branch_tip(BRANCH)
    first = worker_branch(repo, "swarm/task/1", base, {"README.md": "mine "})
    worker_branch(repo, "swarm/task/2", base, {"README.md": "theirs "})
    land_branch(repo, BRANCH, first, message="land 1")
    worktree = repo.workdir.parent / "resolve"
    git(repo.workdir, "worktree", "add", "-q", str(worktree), "swarm/task/2")
    subprocess.run(["git", "merge", "-q", BRANCH], cwd=worktree, capture_output=True)
    write(worktree, {"README.md": "both\n"})
    git(worktree, "commit", "-qam", "resolve")
    head = git(worktree, "rev-parse", "HEAD")
    for replay in (False, True):  # a branch with a merge in it is merged, whatever the style
        landed = land_branch(repo, BRANCH, head, message="land 2", replay_commits=replay)
        assert landed.commit is not None
        assert git(repo.workdir, "show", f"{landed.commit}:README.md") == "both"


def test_a_lock_left_by_a_crash_is_reported_not_spun_on(repo: Repo, monkeypatch: pytest.MonkeyPatch) -> None:
    from swarmd.git import landing

    monkeypatch.setattr(landing, "LOCK_PATIENCE_S", 0.2)
    lock = repo.common_dir / "refs/heads/swarm/main.lock"
    lock.write_text("")
    tip = repo.branch_tip(BRANCH)
    with pytest.raises(GitError, match="main.lock has been held .* delete it"):
        commit_changes(repo, BRANCH, lambda t: {"x.txt": b"x"}, "blocked")
    assert repo.branch_tip(BRANCH) == tip
    lock.unlink()
    assert commit_changes(repo, BRANCH, lambda t: {"x.txt": b"x"}, "free").commit


def test_a_commit_with_an_empty_message_replays(repo: Repo) -> None:
    base = repo.branch_tip(BRANCH)
    worktree = repo.workdir.parent / "silent"
    git(repo.workdir, "worktree", "add", "-q", "-b", "swarm/task/9", str(worktree), base)
    write(worktree, {"quiet.txt": "shh\n"})
    git(worktree, "add", "-A")
    git(worktree, "commit", "-q", "--allow-empty-message", "-m", "")
    head = git(worktree, "rev-parse", "HEAD")
    commit_changes(repo, BRANCH, lambda t: {"moved.txt": b"tip moved"}, "move the tip")
    landed = land_branch(repo, BRANCH, head, message="", replay_commits=True, build=lambda t: {"done": b"1"})
    assert landed.commit is not None
    assert git(repo.workdir, "show", f"{BRANCH}:quiet.txt") == "shh"


def test_a_landing_with_conflict_markers_is_refused(repo: Repo) -> None:
    tip = repo.branch_tip(BRANCH)
    head = worker_branch(repo, "swarm/task/5", tip, {"src/app.py": "<<<<<<< HEAD\nx\n=======\ny\n>>>>>>> other\n"})
    landed = land_branch(repo, BRANCH, head, message="land 5")
    assert landed.commit is None and landed.conflicts == ("src/app.py",)
    assert "conflict markers" in landed.refused
    assert repo.branch_tip(BRANCH) == tip
    ok = worker_branch(repo, "swarm/task/6", tip, {"docs/notes.md": "a <<<<<<< inside a line is fine "})
    assert land_branch(repo, BRANCH, ok, message="land 6").commit


def test_a_known_base_gives_the_same_landing_without_walking_history(repo: Repo) -> None:
    base = repo.branch_tip(BRANCH)
    first = worker_branch(repo, "swarm/task/1", base, {"one.txt": "one "})
    second = worker_branch(repo, "swarm/task/2", base, {"two.txt": "two "}, commits=2)
    land_branch(repo, BRANCH, first, message="land 1", base=base)
    tip = repo.branch_tip(BRANCH)
    landed = land_branch(repo, BRANCH, second, message="land 2", base=base)
    assert git(repo.workdir, "rev-parse", f"{landed.commit}^{{tree}}") == git(
        repo.workdir, "merge-tree", "--write-tree", tip, second
    )
    assert git(repo.workdir, "rev-parse", f"{landed.commit}^2") == second


def test_a_wrong_base_is_noticed(repo: Repo) -> None:
    """A branch reset below where it started does not descend from the base it was given: the real
    merge base is found instead of reverting the tip's work."""
    start = repo.branch_tip(BRANCH)
    commit_changes(repo, BRANCH, lambda t: {"later.txt": b"later\n"}, "later work")
    base = repo.branch_tip(BRANCH)
    rewound = worker_branch(repo, "swarm/task/3", start, {"three.txt": "three "})
    landed = land_branch(repo, BRANCH, rewound, message="land 3", base=base)
    assert git(repo.workdir, "show", f"{landed.commit}:later.txt") == "later"
    assert git(repo.workdir, "show", f"{landed.commit}:three.txt") == "three 0"
