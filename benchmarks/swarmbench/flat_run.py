"""One run of the flat design, from the parent's side: set up the shared checkout, the agents' worktrees
and the task file; start N flat agents (flat_agent.py), let them go together once all are up, and turn
their records and the worker scripts' into a `Run`; then check that every task was merged."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

from gitcmd import git
from swarmbench import ENTRY, RUN_TIMEOUT_S
from swarmbench.measured import Run, read_worker_times
from swarmbench.noise import sync_disk
from swarmbench.repos import setup_flat
from swarmbench.scripts import worker_env


def run_flat(work: Path, n: int, sleep: float, scripts: dict[str, Path], poll: float, sync: bool) -> Run:
    import yaml

    folder = work / f"flat-{n}"
    times = folder / "times"
    times.mkdir(parents=True)
    t = time.perf_counter()
    setup_flat(folder / "repo", n)
    if sync:
        sync_disk()
    run = Run("flat", n, setup_s=time.perf_counter() - t)
    env = worker_env(sleep, times)
    procs = []
    for i in range(1, n + 1):
        argv = [sys.executable, str(ENTRY), "--flat-agent", str(folder), "--agent", str(i),
                "--script", str(scripts["worker"]), "--out", str(folder / f"agent-{i}.json"), "--poll", f"{poll:g}"]
        procs.append(subprocess.Popen(argv, env=env, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True))
    for proc in procs:
        assert proc.stdout is not None
        if proc.stdout.readline().strip() != "ready":
            run.problems.append(f"flat agent {proc.pid} did not start")
    for proc in procs:  # go
        assert proc.stdin is not None
        proc.stdin.write("go\n")
        proc.stdin.close()
    deadline = time.monotonic() + RUN_TIMEOUT_S
    for proc in procs:
        try:
            code = proc.wait(timeout=max(1.0, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            proc.kill()
            code = proc.wait()
        if code != 0:
            run.problems.append(f"flat agent {proc.pid} exited {code}")
    run.workers = read_worker_times(times)
    for i in range(1, n + 1):
        path = folder / f"agent-{i}.json"
        if not path.exists():
            continue
        for record in json.loads(path.read_text()):
            worker = run.workers.get(record["task"])
            if worker is not None:
                worker.launched, worker.landed = record["claimed"], record["merged"]
            run.lock_wait_s += [record["claim_wait"], record["merge_wait"]]
            run.lock_hold_s.append(record["merge_hold"])
    data = yaml.safe_load((folder / "tasks.yaml").read_text())
    not_done = [t["id"] for t in data["tasks"] if t["status"] != "done"]
    if not_done:
        run.problems.append(f"tasks not done in tasks.yaml: {', '.join(map(str, not_done))}")
    files = git(folder / "repo", "ls-tree", "--name-only", "main:work").split()
    if len(files) != n:
        run.problems.append(f"{len(files)} of {n} work files on main")
    return run
