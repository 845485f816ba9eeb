"""`swarmd merge`: the swarm's work taken home into the person's branch, without `.swarm/` bookkeeping."""

from __future__ import annotations

from pathlib import Path

from gitutil import git
from swarmutil import run, start, swarm_repo

ONE_CYCLE = {
    "plan": {1: [{"title": "Hello", "work": {"write": {"hello.txt": "hello\n", "README.md": "# project\n\nHello.\n"}}}]},
    "judge": {"stop_after": 1},
}
TWO_CYCLES = {
    "plan": {
        1: [{"title": "Hello", "work": {"write": {"hello.txt": "hello\n"}}}],
        2: [{"title": "Bye", "work": {"write": {"bye.txt": "bye\n"}}}],
    },
    "judge": {"stop_after": 2},
}


def files_at(root: Path, ref: str) -> list[str]:
    return git(root, "ls-tree", "-r", "--name-only", ref).splitlines()


def test_merge_brings_the_code_and_leaves_an_edited_untracked_goal_alone(tmp_path: Path) -> None:
    root = swarm_repo(tmp_path / "repo", ONE_CYCLE)
    start(root)
    goal = root / ".swarm/goal.md"
    goal.write_bytes(goal.read_bytes() + b"\nEdited after the run.\n")
    edited = goal.read_bytes()
    tip = git(root, "rev-parse", "swarm/main")

    proc = run(root, "merge")
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.startswith(f"merged swarm/main at {tip[:10]} into main: ")
    assert git(root, "show", "HEAD:hello.txt") == "hello" and (root / "hello.txt").read_text() == "hello\n"
    assert (root / "README.md").read_text() == "# project\n\nHello.\n"
    assert not [path for path in files_at(root, "HEAD") if path.startswith(".swarm/")]
    assert goal.read_bytes() == edited
    assert git(root, "status", "--porcelain") == "?? .swarm/"
    git(root, "merge-base", "--is-ancestor", tip, "HEAD^2")
    assert git(root, "log", "-1", "--format=%an <%ae>|%cn|%s") == (
        f"Test Person <person@example.com>|Test Person|Merge the swarm's work (swarm/main at {tip[:10]})"
    )
    assert git(root, "log", "-1", "--format=%an|%s", "HEAD^2") == (
        f"swarmd|swarmd: swarm/main at {tip[:10]} without .swarm/"
    )

    again = run(root, "merge")
    assert (again.returncode, again.stdout.strip()) == (
        0, f"nothing to merge: main already has everything swarm/main landed (at {tip[:10]})"
    )


def test_a_committed_swarm_folder_and_its_local_edit_stay_as_they_are(tmp_path: Path) -> None:
    root = swarm_repo(tmp_path / "repo", ONE_CYCLE)
    git(root, "add", ".swarm")
    git(root, "commit", "-q", "-m", "swarmd settings")
    start(root)
    committed = git(root, "rev-parse", "HEAD:.swarm")
    goal = root / ".swarm/goal.md"
    goal.write_bytes(goal.read_bytes() + b"\nA local edit.\n")
    edited = goal.read_bytes()

    proc = run(root, "merge")
    assert proc.returncode == 0, proc.stderr
    assert git(root, "show", "HEAD:hello.txt") == "hello"
    assert git(root, "rev-parse", "HEAD:.swarm") == committed
    assert git(root, "ls-tree", "--name-only", "HEAD:.swarm").splitlines() == ["config.yaml", "goal.md"]
    assert goal.read_bytes() == edited
    assert git(root, "status", "--porcelain") == "M .swarm/goal.md"


def test_local_changes_refused_by_git_then_a_conflict_left_to_resolve(tmp_path: Path) -> None:
    root = swarm_repo(tmp_path / "repo", ONE_CYCLE)
    start(root)
    before = git(root, "rev-parse", "HEAD")
    (root / "README.md").write_text("# project\n\nMy local edit.\n")
    refused = run(root, "merge")
    assert refused.returncode == 1
    assert refused.stderr.count("\n") == 1 and "refused, nothing changed" in refused.stderr
    assert "README.md" in refused.stderr and "local changes" in refused.stderr
    assert (root / "README.md").read_text() == "# project\n\nMy local edit.\n"
    assert git(root, "rev-parse", "HEAD") == before
    git(root, "checkout", "--", "README.md")

    (root / "hello.txt").write_text("mine\n")
    git(root, "add", "hello.txt")
    git(root, "commit", "-q", "-m", "my hello")
    mine = git(root, "rev-parse", "HEAD")
    conflict = run(root, "merge")
    assert conflict.returncode == 1
    assert conflict.stderr == (
        "swarmd: merging swarm/main into main stopped on conflicts in hello.txt: "
        "resolve them and `git commit`, or `git merge --abort`\n"
    )
    assert (root / ".git/MERGE_HEAD").is_file() and "<<<<<<<" in (root / "hello.txt").read_text()
    busy = run(root, "merge")
    assert busy.returncode == 2 and "a merge is in progress" in busy.stderr

    git(root, "merge", "--abort")
    assert git(root, "rev-parse", "HEAD") == mine
    assert (root / "hello.txt").read_text() == "mine\n"
    assert git(root, "status", "--porcelain") == "?? .swarm/"


def test_a_second_merge_brings_only_the_new_work(tmp_path: Path) -> None:
    root = swarm_repo(tmp_path / "repo", TWO_CYCLES)
    start(root, "--cycles", "1")
    assert run(root, "merge").returncode == 0
    # A copy of the goal, committed by the person: were the swarm's .swarm/ files in the next merge's base,
    # git would see .swarm/goal.md renamed to it on this side and deleted on the other, a conflict.
    (root / "docs").mkdir()
    (root / "docs/goal.md").write_bytes((root / ".swarm/goal.md").read_bytes())
    git(root, "add", "docs")
    git(root, "commit", "-q", "-m", "keep the goal in the docs")
    first = git(root, "rev-parse", "HEAD")

    start(root, "--cycles", "1")
    proc = run(root, "merge")
    assert proc.returncode == 0, proc.stderr
    assert "1 file changed" in proc.stdout
    assert git(root, "diff", "--name-only", first, "HEAD") == "bye.txt"
    assert git(root, "show", "HEAD:bye.txt") == "bye" and git(root, "show", "HEAD:hello.txt") == "hello"
    git(root, "merge-base", "--is-ancestor", "swarm/main", "HEAD")
    assert git(root, "status", "--porcelain") == "?? .swarm/"
    assert run(root, "merge").stdout.startswith("nothing to merge")


def test_refusals_and_nothing_to_merge(tmp_path: Path) -> None:
    root = swarm_repo(tmp_path / "repo", ONE_CYCLE)
    head = git(root, "rev-parse", "HEAD")
    fresh = run(root, "merge")
    assert (fresh.returncode, fresh.stdout.startswith("nothing to merge: main already has")) == (0, True)
    assert git(root, "rev-parse", "HEAD") == head

    git(root, "checkout", "-q", "--detach")
    detached = run(root, "merge")
    assert detached.returncode == 2 and detached.stderr.startswith(f"swarmd: HEAD is detached at {head[:10]};")

    git(root, "symbolic-ref", "HEAD", "refs/heads/swarm/main")
    on_it = run(root, "merge")
    assert on_it.returncode == 2 and "swarm/main is the integration branch itself" in on_it.stderr

    git(root, "symbolic-ref", "HEAD", "refs/heads/main")
    git(root, "branch", "-q", "-D", "swarm/main")
    missing = run(root, "merge")
    assert missing.returncode == 2 and "there is no branch swarm/main" in missing.stderr
    assert "`swarmd init`" in missing.stderr
