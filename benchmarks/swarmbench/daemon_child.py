"""The swarmd daemon alone in a process of its own (`swarm.py --child REPO`), so that its CPU time and peak
memory (getrusage) are its own and not the benchmark's; it runs one cycle and writes what it measured, with
its log lines and their stamps, as JSON for the parent (daemon_run.py) to read.

swarmd is imported only after the first getrusage, so its imports count as the daemon's startup CPU.
"""

from __future__ import annotations

import argparse
import json
import resource
import sys
import time
from pathlib import Path


def child_main(args: argparse.Namespace) -> int:
    """The daemon, alone in this process: `Daemon(...).run()` for one cycle, then a JSON report."""
    before = resource.getrusage(resource.RUSAGE_SELF)
    from swarmd.config import load_config
    from swarmd.daemon.loop import Daemon, Options
    from swarmd.git.repo import Repo

    root = Path(args.child)
    lines: list[tuple[float, str]] = []

    def say(text: str) -> None:
        lines.append((time.time(), text))
        if args.verbose:
            print(text, file=sys.stderr, flush=True)

    daemon = Daemon(Repo.discover(root), load_config(root), Options(cycles=1, max_workers=args.workers, say=say))
    profiler = None
    if args.profile_out:
        import cProfile

        profiler = cProfile.Profile()
    ready = resource.getrusage(resource.RUSAGE_SELF)
    t0 = time.time()
    error = None
    try:
        if profiler:
            rc = profiler.runcall(daemon.run)
        else:
            rc = daemon.run()
    except BaseException:  # report it with what was measured so far
        import traceback

        rc, error = 99, traceback.format_exc()
        print(error, file=sys.stderr)
    t1 = time.time()
    after = resource.getrusage(resource.RUSAGE_SELF)
    children = resource.getrusage(resource.RUSAGE_CHILDREN)
    if profiler:
        profiler.dump_stats(args.profile_out)
    report = {
        "rc": rc,
        "error": error,
        "run_s": t1 - t0,
        "cpu_s": (after.ru_utime + after.ru_stime) - (ready.ru_utime + ready.ru_stime),
        "startup_cpu_s": (ready.ru_utime + ready.ru_stime) - (before.ru_utime + before.ru_stime),
        "children_cpu_s": children.ru_utime + children.ru_stime,
        "maxrss_kb": after.ru_maxrss,
        "lines": lines,
    }
    Path(args.out).write_text(json.dumps(report))
    return 0
