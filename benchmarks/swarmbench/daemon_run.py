"""One swarmd run, from the parent's side: set the repository up (warm or cold pool), run the daemon child
(daemon_child.py) on it, and turn its JSON report and log lines into a `Run`; then check that every task
landed. With `--profile` the child's cProfile data is summarised into the run (profiling.py)."""

from __future__ import annotations

import json
import re
import subprocess
import sys
import time
from pathlib import Path

from swarmbench import ENTRY, RUN_TIMEOUT_S
from swarmbench.measured import Run, read_worker_times
from swarmbench.noise import sync_disk
from swarmbench.profiling import profile_breakdown, profile_text
from swarmbench.repos import setup_swarm
from swarmbench.scripts import worker_env

STARTED = re.compile(r"^\d\d:\d\d:\d\d worker (\S+) started, attempt (\d+)$")
LANDED = re.compile(r"^\d\d:\d\d:\d\d landed (\S+) at ([0-9a-f]+)")
EXITED = re.compile(r"^\d\d:\d\d:\d\d worker (\S+) exited with status (-?\d+) after")


def run_swarm(work: Path, n: int, warm: bool, sleep: float, scripts: dict[str, Path], profile: bool,
              verbose: bool, sync: bool) -> Run:
    design = "warm" if warm else "cold"
    folder = work / f"swarmd-{design}-{n}"
    times = folder / "times"
    times.mkdir(parents=True)
    t = time.perf_counter()
    setup_swarm(folder / "repo", n, scripts, warm)
    if sync:
        sync_disk()
    run = Run(design, n, setup_s=time.perf_counter() - t)
    out = folder / "report.json"
    argv = [sys.executable, str(ENTRY), "--child", str(folder / "repo"), "--workers", str(n), "--out", str(out)]
    if profile:
        argv += ["--profile-out", str(folder / "daemon.prof")]
    if verbose:
        argv.append("--verbose")
    with open(folder / "child.log", "wb") as log:
        try:
            code = subprocess.run(argv, env=worker_env(sleep, times), stdout=log, stderr=subprocess.STDOUT,
                                  stdin=subprocess.DEVNULL, timeout=RUN_TIMEOUT_S).returncode
        except subprocess.TimeoutExpired:
            code = f"nothing: killed after {RUN_TIMEOUT_S} s"
    if code != 0 or not out.exists():  # (the child reports its own exceptions in the JSON)
        run.problems.append(f"the daemon child exited {code}; see {folder / 'child.log'}:\n"
                            + tail(folder / "child.log"))
        return run
    report = json.loads(out.read_text())
    if report["rc"] != 0:
        run.problems.append(f"Daemon.run returned {report['rc']}: {shorten(report['error'] or '')}")
    run.cpu_s, run.startup_cpu_s = report["cpu_s"], report["startup_cpu_s"]
    run.children_cpu_s, run.maxrss_mb = report["children_cpu_s"], report["maxrss_kb"] / 1024
    run.run_s = report["run_s"]
    run.lines = [(stamp, text) for stamp, text in report["lines"]]
    run.workers = read_worker_times(times)
    for stamp, text in run.lines:
        for pattern, attr in ((STARTED, "launched"), (EXITED, "exited"), (LANDED, "landed")):
            found = pattern.match(text)
            if found and found[1] in run.workers and getattr(run.workers[found[1]], attr) is None:
                setattr(run.workers[found[1]], attr, stamp)
    run.problems += check_swarm(folder / "repo", n)
    if not any("closed cycle 1: stop" in text for _, text in run.lines):
        run.problems.append("the daemon never said `closed cycle 1: stop`")
    if profile and (folder / "daemon.prof").exists():
        run.profile = (f"the loop's main steps (cumulative wall time, main thread):\n{profile_breakdown(folder / 'daemon.prof')}"
                       f"\n\ntop 30 functions by cumulative time:\n{profile_text(folder / 'daemon.prof')}")
    return run


def check_swarm(root: Path, n: int) -> list[str]:
    """Every task done at the integration tip, and every worker's file there."""
    from swarmd.config import load_config
    from swarmd.git.repo import Repo
    from swarmd.store import read_tree

    repo, config = Repo.discover(root), load_config(root)
    tip = repo.branch_tip(config.integration.branch)
    assert tip is not None
    tasks = read_tree(repo, tip).tasks
    problems = []
    not_done = sorted((t.id for t in tasks.values() if t.status.value != "done"), key=int)
    if not_done:
        listed = ", ".join(not_done) if len(not_done) <= 10 else f"{', '.join(not_done[:10])}, ..."
        problems.append(f"{len(not_done)} tasks not done at the tip: {listed}")
    files = repo.folder_blobs(tip, "work")
    if len(files) != n:
        problems.append(f"{len(files)} of {n} work files at the tip")
    return problems


def shorten(text: str) -> str:
    """A traceback cut to its last frame and the exception, and a long message (git says one line per file)
    to its first and last lines."""
    lines = text.strip().splitlines()
    raised = next((i for i, line in enumerate(lines) if re.match(r"[\w.]+(Error|Exception|Exhausted)\b", line)), None)
    if raised is not None:
        lines = lines[max(0, raised - 6):]  # the last three frames
    if len(lines) > 10:
        lines = lines[:8] + [f"    [... {len(lines) - 10} more lines ...]"] + lines[-2:]
    return "\n".join(lines)


def tail(path: Path, lines: int = 30) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return ""
