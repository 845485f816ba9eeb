"""Run the whole test suite again and again while other processes keep every core busy: a test that
waits on time instead of events fails here first.

    python tests/soak.py [--runs 10] [--load 2] [-- extra pytest arguments]

Uses the pytest beside the running interpreter (run it with the venv's python, e.g.
`.venv/bin/python tests/soak.py`). Prints one line per run and
a summary; exits 1 if any run failed. The load processes are ended whatever happens.
"""

from __future__ import annotations

import argparse
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

BUSY = "while True: pass"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=10)
    parser.add_argument("--load", type=int, default=os.cpu_count() or 2, help="busy processes (default: one a core)")
    parser.add_argument("pytest_args", nargs="*")
    args = parser.parse_args()
    tests = Path(__file__).resolve().parent
    load = [subprocess.Popen([sys.executable, "-c", BUSY], start_new_session=True) for _ in range(args.load)]
    failed = 0
    try:
        for number in range(1, args.runs + 1):
            started = time.monotonic()
            proc = subprocess.run(
                # The venv's pytest, not `python -m pytest`: the checkout stays off sys.path, as in CI.
                [str(Path(sys.executable).with_name("pytest")), "-q", "-p", "no:cacheprovider", *args.pytest_args],
                cwd=tests.parent, capture_output=True, text=True, stdin=subprocess.DEVNULL,
            )
            last = (proc.stdout.strip().splitlines() or ["(no output)"])[-1]
            print(f"run {number}: exit {proc.returncode} in {time.monotonic() - started:.0f} s: {last}", flush=True)
            if proc.returncode != 0:
                failed += 1
                print(proc.stdout[-6000:], proc.stderr[-2000:], sep="\n", flush=True)
    finally:
        for busy in load:
            os.killpg(busy.pid, signal.SIGKILL)
            busy.wait()
    print(f"{args.runs - failed} passed, {failed} failed (runs of the whole suite, {args.load} busy processes)")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
