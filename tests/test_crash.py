"""kill -9 of the daemon at 50 seeded points (inside landings, .swarm/ commits, pool resets, agents'
commits, the judge's commit), sometimes with all its agents: the next start recovers, and at the end
every task's change has landed exactly once, git fsck is clean, no agent is left, the pool is bounded."""

from __future__ import annotations

import os
import random
import signal
from pathlib import Path

from gitutil import git
from swarmutil import agent_pids, run, start, swarm_repo, tasks, wait_for_exit, working_in

from swarmd.failpoints import NAMES

KILLS = 50
POOL_SIZE = 2 + 3 + 2  # planners + workers + 2: the defaults below

SCRIPT = {
    "plan": {
        1: [
            {"title": "one", "work": {"write": {"out/one.txt": "1\n"}}},
            {"title": "two", "work": {"leave": {"out/two.txt": "2\n"}}},  # swarmd commits it
            {"title": "area", "kind": "plan", "plan": [[
                {"title": "three", "work": {"write": {"out/three.txt": "3\n"}}},
                {"title": "four", "needs": ["three"], "work": {"write": {"out/four.txt": "4\n"}}},
            ]]},
        ],
        2: [{"title": "five", "work": {"write": {"out/five.txt": "5\n"}}}],
    },
    "judge": {"stop_after": 2},
}
FILES = {"one": "1", "two": "2", "three": "3", "four": "4", "five": "5"}


def kill_groups(pids: list[int]) -> None:
    for pid in pids:
        try:
            os.killpg(os.getpgid(pid), signal.SIGKILL)
        except ProcessLookupError:
            pass


def test_kill_9_at_seeded_points_is_recovered(tmp_path: Path) -> None:
    rnd = random.Random(20261123)
    kills = repos = 0
    killed_at: set[str] = set()
    while kills < KILLS:
        repos += 1
        root = swarm_repo(tmp_path / f"repo{repos}", SCRIPT, {"limits": {"planners": 2, "workers": 3}})
        for _ in range(8):
            # Every failpoint first at its first passing (so each is surely reached), then at random.
            pending = sorted(set(NAMES) - killed_at)
            name = rnd.choice(pending or NAMES)
            point = f"{name}:{1 if pending else rnd.randint(1, 5)}"
            proc = run(root, "start", env={"SWARMD_CRASH_AT": point})
            if proc.returncode == 0:
                break  # the swarm finished before reaching that point
            assert proc.returncode == -signal.SIGKILL, f"{point}: {proc.returncode}\n{proc.stdout}\n{proc.stderr}"
            kills += 1
            killed_at.add(point.rpartition(":")[0])
            if rnd.random() < 0.3:
                kill_groups(agent_pids(root))  # the machine went down: the agents die with the daemon
            # Agents the dead daemon left go on (the next start stops any still running), and so does a
            # `git commit` it started for one; let them finish before fsck, which would otherwise race
            # with their commits.
            wait_for_exit(agent_pids(root) + working_in(root), timeout=60)
            git(root, "fsck", "--strict", "--no-progress")
            assert len(list((root / ".git/swarm/pool").glob("wt-*/"))) <= POOL_SIZE
        start(root)  # a last start runs the swarm to its end
        check_landed_once(root)
        assert agent_pids(root) == [], "no agent is left running"
        assert len(list((root / ".git/swarm/pool").glob("wt-*/"))) <= POOL_SIZE
        git(root, "fsck", "--strict", "--no-progress")
    assert killed_at == set(NAMES), f"never killed at {set(NAMES) - killed_at}"


def check_landed_once(root: Path) -> None:
    found = tasks(root)
    assert all(task["status"] == "done" for task in found.values()), {t: v["status"] for t, v in found.items()}
    subjects = git(root, "log", "--first-parent", "--format=%s", "swarm/main").splitlines()
    for task_id, task in found.items():
        if task["kind"] == "work":
            landings = [s for s in subjects if s.startswith(f"land {task_id}:")]
            assert len(landings) == 1, f"task {task_id} landed {len(landings)} times"
            text = FILES[task["title"]]
            assert git(root, "show", f"swarm/main:out/{task['title']}.txt") == text
    assert subjects.count("close cycle 2: stop") == 1 and subjects.count("close cycle 1: continue") == 1
