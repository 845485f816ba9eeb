"""Agents that misbehave cost one attempt, never the swarm: bad result files, a HEAD moved off the agent's
branch, a rewound integration branch, a bug in swarmd's own exit handling. Each runs `swarmd start` as a
real process on a real repository; the misbehaving worker is a bash script that follows the contract."""

from __future__ import annotations

from pathlib import Path

import pytest
from gitutil import git
from swarmutil import cycle as cycle_record
from swarmutil import run, start, swarm_repo, tasks

ONE_TASK = {"plan": {1: [{"title": "Write it", "work": {"write": {"it.txt": "it\n"}}}]}, "judge": {"stop_after": 1}}


WORK = ("echo it > it.txt && git add -A && git -c user.name=w -c user.email=w@x commit -qm it\n"
        'echo "summary: wrote it.txt" > "$SWARM_RESULT_FILE"\n')  # the task, done properly


def worker(tmp_path: Path, body: str) -> list[str]:
    """A worker in bash: `body` runs on attempt 1 only; later attempts do the task properly."""
    script = tmp_path / "worker.sh"
    script.write_text("set -eu\n" 'if [ "$SWARM_ATTEMPT" = 1 ]; then\n' + body + "\nexit 0\nfi\n" + WORK)
    return ["bash", str(script)]


def once_then_work(tmp_path: Path, first: str) -> str:
    """A worker's body: `first` the first time any run starts (a restart may repeat attempt 1), then the task."""
    once = tmp_path / "once"
    return f"if [ ! -e {once} ]; then touch {once}; {first}; fi\n" + WORK


def stops_for_a_moved_branch(root: Path, words: str) -> tuple[str, str]:
    """`swarmd start` stops with exit 2 and a line with `words`: that line, and the command in it that restores
    the branch."""
    proc = run(root, "start")
    assert proc.returncode == 2, proc.stdout + proc.stderr
    [line] = [line for line in proc.stderr.splitlines() if words in line]
    return line, line.split("`")[1]


def lands_once_after(root: Path, restore: str) -> None:
    """Restore the branch as the message says, start again: the task lands, exactly once."""
    git(root, *restore.split()[1:])
    start(root)
    subjects = git(root, "log", "--first-parent", "--format=%s", "swarm/main").splitlines()
    assert [s for s in subjects if s.startswith("land 1:")] == ["land 1: wrote it.txt"], "it landed once"
    assert "it" not in subjects, "an agent's own commit on the branch is gone from it"
    assert tasks(root)["1"]["status"] == "done"


def repo_with_worker(tmp_path: Path, body: str, **config: object) -> Path:
    return swarm_repo(tmp_path / "repo", ONE_TASK, {"agents": {"worker": {"command": worker(tmp_path, body)}}, **config})


BAD_RESULTS = {
    "bytes": ("printf 'summary: \\xff\\xfe\\n' > \"$SWARM_RESULT_FILE\"", "not UTF-8"),
    "a folder": ('mkdir "$SWARM_RESULT_FILE"', "a folder, not a regular file"),
    "a symlink": ('ln -s /etc/passwd "$SWARM_RESULT_FILE"', "a symlink"),
    "a FIFO": ('mkfifo "$SWARM_RESULT_FILE"', "a FIFO, not a regular file"),
    "too big": ('head -c 2000000 /dev/zero | tr "\\0" a > "$SWARM_RESULT_FILE"', "limit for a result file"),
    "wrong type": ('printf "summary: [1, 2]\\n" > "$SWARM_RESULT_FILE"', "field `summary`"),
    "not a mapping": ('printf -- "- a\\n- b\\n" > "$SWARM_RESULT_FILE"', "expected a mapping"),
}


@pytest.mark.parametrize("kind", list(BAD_RESULTS))
def test_a_bad_result_file_fails_the_attempt_and_names_the_file(tmp_path: Path, kind: str) -> None:
    body, expected = BAD_RESULTS[kind]
    root = repo_with_worker(tmp_path, body)
    out = start(root).stdout
    task = tasks(root)["1"]
    first, second = task["attempts"]
    assert first["outcome"] == "failed" and expected in first["reason"], first["reason"]
    assert str(root / ".git/swarm/runs/1/c1-a1/result.yaml") in first["reason"], "the reason names the file"
    assert second["outcome"] == "landed" and task["status"] == "done", "the swarm went on"
    assert "closed cycle 1" in out


def test_a_bad_result_crashes_nothing_on_restart_either(tmp_path: Path) -> None:
    root = repo_with_worker(tmp_path, BAD_RESULTS["bytes"][0], max_attempts=1)
    start(root)
    assert tasks(root)["1"]["status"] == "failed"
    again = run(root, "start")
    assert again.returncode == 0, again.stderr


def test_an_agent_that_commits_on_another_branch_fails_and_lands_nothing(tmp_path: Path) -> None:
    body = ("git checkout -q -b elsewhere && echo stray > stray.txt && git add -A && "
            "git -c user.name=w -c user.email=w@x commit -qm stray")
    root = repo_with_worker(tmp_path, body)
    start(root)
    task = tasks(root)["1"]
    first = task["attempts"][0]
    assert first["outcome"] == "failed" and "HEAD moved to the branch elsewhere" in first["reason"], first["reason"]
    assert "swarm/task/1" in first["reason"], "the reason names the branch it should have stayed on"
    assert "stray.txt" not in git(root, "ls-tree", "-r", "--name-only", "swarm/main")
    assert git(root, "show", "elsewhere:stray.txt") == "stray", "what it did is left where it put it"
    assert task["status"] == "done" and task["attempts"][1]["outcome"] == "landed"


def test_a_detached_head_fails_the_attempt(tmp_path: Path) -> None:
    root = repo_with_worker(tmp_path, "git checkout -q --detach HEAD")
    start(root)
    first = tasks(root)["1"]["attempts"][0]
    assert first["outcome"] == "failed" and "HEAD was detached at" in first["reason"]


def test_a_rewound_integration_branch_stops_the_daemon_and_nothing_lands_twice(tmp_path: Path) -> None:
    rewind = 'git update-ref "refs/heads/$SWARM_INTEGRATION_BRANCH" "$SWARM_INTEGRATION_BRANCH~1"'
    root = repo_with_worker(tmp_path, once_then_work(tmp_path, rewind))
    line, restore = stops_for_a_moved_branch(root, "does not descend from")
    assert restore.startswith("git update-ref refs/heads/swarm/main ")
    _, _, _, written, moved_to = restore.split()
    assert line.count(written[:10]) >= 1 and moved_to[:10] in line, "the message names both commits"
    assert "land 1:" not in git(root, "log", "--format=%s", "swarm/main")

    refused = run(root, "start")
    assert refused.returncode == 2 and "does not descend from" in refused.stderr, "a rewound tip is refused at start"
    assert git(root, "rev-parse", "swarm/main") == moved_to, "a refused start writes nothing"
    assert "does not descend from" in run(root, "check").stderr
    lands_once_after(root, restore)


def test_a_bug_while_handling_an_exit_fails_that_attempt_and_the_daemon_goes_on(tmp_path: Path) -> None:
    root = swarm_repo(tmp_path / "repo", ONE_TASK)
    # The first exit handled is the root planner's: the stand-in bug hits the second, the worker's.
    proc = run(root, "start", env={"SWARMD_RAISE_AT": "exit:handle:2"})
    assert proc.returncode == 0, proc.stdout + proc.stderr
    log = (root / ".git/swarm/errors.log").read_text()
    assert "Traceback" in log and "FailpointError: failpoint exit:handle reached" in log
    task = tasks(root)["1"]
    first, second = task["attempts"]
    assert first["outcome"] == "failed" and "FailpointError" in first["reason"]
    assert "the traceback is in .git/swarm/errors.log" in first["reason"]
    assert second["outcome"] == "landed" and task["status"] == "done"
    assert git(root, "cat-file", "-t", "swarm/failed/1/c1-a1") == "commit", "its branch is kept"


def test_an_agent_that_breaks_its_index_fails_with_the_traceback_logged(tmp_path: Path) -> None:
    body = 'echo stray > stray.txt\necho garbage > "$(git rev-parse --git-dir)/index"'
    root = repo_with_worker(tmp_path, body)
    start(root)
    first = tasks(root)["1"]["attempts"][0]
    assert first["outcome"] == "failed" and "could not be committed" in first["reason"], first["reason"]
    assert ".git/swarm/errors.log" in first["reason"]
    assert "Traceback" in (root / ".git/swarm/errors.log").read_text()
    assert tasks(root)["1"]["status"] == "done"
    pool = root / ".git/swarm/pool"
    assert not list(pool.glob("*.lease")), "a worktree git cannot clean is removed, not left leased"
    git(root, "fsck", "--strict", "--no-progress")
    assert run(root, "start").returncode == 0, "and the next start has nothing to trip over"


@pytest.mark.parametrize(("make", "words"), [
    ('{ printf "id: \'1\'\\ntitle: big\\nkind: work\\nparent: null\\ndescription: "; head -c 2000000 /dev/zero | tr "\\0" a; }'
     " > .swarm/tasks/1.yaml", "bytes, over the 1,048,576-byte limit for a task file"),
    ("ln -s /etc/passwd .swarm/tasks/1.yaml", "a symlink; a task file must be a regular file"),
])
def test_a_planner_task_file_too_big_or_a_symlink_is_refused_unread(tmp_path: Path, make: str, words: str) -> None:
    planner = tmp_path / "planner.sh"
    planner.write_text(f"set -eu\nmkdir -p .swarm/tasks\n{make}\n"
                       "git add -A && git -c user.name=p -c user.email=p@x commit -qm plan\n")
    root = swarm_repo(tmp_path / "repo", ONE_TASK,
                      {"max_attempts": 1, "agents": {"planner": {"command": ["bash", str(planner)]}}})
    start(root)
    record = cycle_record(root, 1)
    [attempt] = record["root"]["attempts"]
    assert attempt["outcome"] == "refused" and ".swarm/tasks/1.yaml: " in attempt["reason"]
    assert words in attempt["reason"], attempt["reason"]
    assert git(root, "ls-tree", "swarm/main", ".swarm/tasks") == "", "nothing of it landed"


def test_an_agent_that_commits_on_the_integration_branch_stops_the_daemon(tmp_path: Path) -> None:
    root = repo_with_worker(tmp_path, once_then_work(tmp_path, 'git checkout -q "$SWARM_INTEGRATION_BRANCH"'))
    line, restore = stops_for_a_moved_branch(root, "was moved forward from")
    assert "a task could land twice" in line
    lands_once_after(root, restore)  # the pooled worktree the agent left on swarm/main is repaired by the start
