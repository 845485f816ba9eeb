"""One agent of the flat design, the design swarmd replaced (`swarm.py --flat-agent FOLDER --agent K`):
it claims tasks from ONE shared YAML file under a filelock.FileLock, runs the worker script in a worktree
of its own, and lands with `git merge` in ONE shared checkout while holding the same lock. It records how
long it waited for and held the lock, as JSON for the parent (flat_run.py) to read."""

from __future__ import annotations

import argparse
import json
import random
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from gitcmd import ENV, git

IDENTITY = {
    "GIT_AUTHOR_NAME": "Bench Worker", "GIT_AUTHOR_EMAIL": "worker@example.com",
    "GIT_COMMITTER_NAME": "Bench Worker", "GIT_COMMITTER_EMAIL": "worker@example.com",
}


def flat_agent_main(args: argparse.Namespace) -> int:
    """One flat agent: claim a task from the shared YAML under the lock, work in its own worktree, merge
    into the shared checkout and mark the task done under the same lock; until no task is left."""
    import yaml
    from filelock import FileLock

    loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
    dumper = getattr(yaml, "CSafeDumper", yaml.SafeDumper)
    base = Path(args.flat_agent)
    me = args.agent
    shared, tasks_file = base / "repo", base / "tasks.yaml"
    mine = base / "agents" / f"wt-{me}"
    lock = FileLock(str(tasks_file) + ".lock", poll_interval=args.poll)
    env = ENV | IDENTITY
    records: list[dict[str, Any]] = []

    def rewrite(change: Any) -> Any:
        data = yaml.load(tasks_file.read_text(), Loader=loader)
        found = change(data["tasks"])
        tasks_file.write_text(yaml.dump(data, Dumper=dumper, sort_keys=False))
        return found

    def claim(tasks: list[dict[str, Any]]) -> str | None:
        for task in tasks:
            if task["status"] == "todo":
                task["status"], task["agent"] = "running", me
                return str(task["id"])
        return None

    def done(task_id: str) -> Any:
        def change(tasks: list[dict[str, Any]]) -> None:
            for task in tasks:
                if str(task["id"]) == task_id:
                    task["status"] = "done"
        return change

    print("ready", flush=True)
    sys.stdin.readline()  # every agent is up before the first claim: startup is not what is measured
    # Agents that began in the same instant would poll the lock in lockstep (all wake, one wins, all sleep
    # again: one claim per poll interval); real agents do not start together, so spread their phases.
    time.sleep(random.uniform(0, args.poll))
    while True:
        asked = time.time()
        with lock:
            got = time.time()
            task_id = rewrite(claim)
            released = time.time()
        if task_id is None:
            break
        record: dict[str, Any] = {"task": task_id, "claim_wait": got - asked, "claim_hold": released - got,
                                  "claimed": released}
        git(mine, "checkout", "--quiet", "--detach", "main", env=env)  # start from the shared tip
        agent_env = {**env, "SWARM_ROLE": "worker", "SWARM_TASK_ID": task_id, "SWARM_ATTEMPT": "1"}
        code = subprocess.run(["bash", args.script], cwd=mine, env=agent_env, stdin=subprocess.DEVNULL).returncode
        head = git(mine, "rev-parse", "HEAD", env=env)
        asked = time.time()
        with lock:
            got = time.time()
            try:
                git(shared, "merge", "--quiet", "--no-ff", "--no-edit", "-m", f"merge task {task_id}", head, env=env)
                merged = True
            except RuntimeError as exc:
                print(exc, file=sys.stderr)
                subprocess.run(["git", "merge", "--abort"], cwd=shared, env=env, capture_output=True)
                merged = False
            if merged and code == 0:
                rewrite(done(task_id))
            released = time.time()
        record.update(merge_wait=got - asked, merge_hold=released - got, merged=released if merged else None,
                      exit=code)
        records.append(record)
    Path(args.out).write_text(json.dumps(records))
    return 0
