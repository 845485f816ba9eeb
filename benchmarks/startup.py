"""Benchmark of the inspection commands' start-up: how long `swarmd status`, `tasks`, `show` and `log` take,
next to a bare `python -c pass`, on a repository with a realistic task tree.

    python benchmarks/startup.py [--repeat 21] [--tasks 100] [--files 500] [--tty] [--work DIR] [--keep]

The repository: `--files` files (benchmarks/genrepo.py), `swarmd init`, a full worktree pool (`status` adds up
the size of every file in it), and on the integration branch `--tasks` tasks (plans with children, `needs`
between siblings, attempts with usage and handoffs) and four cycle records, three closed and one open; the
agent log of one attempt under `.git/swarm/runs/`.

Every command runs as a user runs it: the `swarmd` console script beside this Python (`python -m swarmd`
when there is none), in the repository, stdout a pipe (`--tty`: a pseudo-terminal, as in an interactive
shell). The commands take turns, `--repeat` rounds, so a burst of load elsewhere hits them alike; the table
shows each one's median wall time, its ratio to `python -c pass`, its median CPU time (user + system, less
skewed by other work on the machine), and what one extra run with `-X importtime` says it imported: how
many modules, and which of the heavy packages (`importlib.metadata` included: a console script made by an
older setuptools reads entry points through it). To compare with another version of swarmd, run this with
PYTHONPATH set to that version's source folder.
"""

from __future__ import annotations

import argparse
import os
import pty
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

from genrepo import generate
from gitcmd import ENV
from hostinfo import load_average
from swarmbench.noise import cpu_stall
from swarmbench.report import machine

HEAVY = ("litellm", "jinja2", "pydantic", "rich", "pygit2", "yaml", "click", "filelock", "importlib.metadata")
SHOWN_TASK = "1.6"  # a done work task with an attempt, a handoff and an agent log


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeat", type=int, default=21, help="rounds; every command runs once a round")
    parser.add_argument("--tasks", type=int, default=100, help="tasks in the tree (at least 20)")
    parser.add_argument("--files", type=int, default=500, help="files in the repository, and so in each worktree")
    parser.add_argument("--tty", action="store_true", help="stdout a pseudo-terminal instead of a pipe")
    parser.add_argument("--work", type=Path, help="where to build the repository (default: a temporary folder)")
    parser.add_argument("--keep", action="store_true", help="keep the work folder")
    return parser.parse_args()


def build_repo(path: Path, n: int, files: int) -> None:
    """The repository the commands inspect (see the module docstring)."""
    from datetime import UTC, datetime

    from swarmd.config import load_config
    from swarmd.git.landing import commit_changes
    from swarmd.git.pool import WorktreePool
    from swarmd.git.repo import Repo
    from swarmd.init import init
    from swarmd.store import cycle_path, dump_cycle, dump_task, task_path
    from swarmd.tasks import Attempt, Cycle, Kind, Outcome, Result, Status, Task, Usage, Verdict

    generate(path, files=files, folders=max(files * 2 // 25, 1), commits=20, seed=1)
    init(path, goal="# Goal\n\nBenchmark: a tree to look at.\n")
    repo, config = Repo.discover(path), load_config(path)
    statuses = (Status.DONE, Status.DONE, Status.DONE, Status.FAILED, Status.RUNNING, Status.TODO, Status.BLOCKED)
    usage = Usage(input_tokens=41_000, output_tokens=3_200, cost_usd=0.21)
    tasks: list[Task] = []
    plans = max(n // 20, 1)
    for p in range(1, plans + 1):  # each plan task has children; every child but the first needs the one before
        tasks.append(Task(id=str(p), title=f"Plan part {p} of the goal", kind=Kind.PLAN, parent=None,
                          status=Status.RUNNING, description=f"Split part {p} into work tasks.\n"))
        for c in range(1, (n - plans) // plans + 1):
            status = statuses[(p + c) % len(statuses)]
            done = status is Status.DONE
            attempts = [Attempt(number=1, cycle=1 + c % 3, outcome=Outcome.LANDED if done else Outcome.FAILED,
                                seconds=73.5, usage=usage, reason=None if done else "tests failed: 3 of 120")
                        ] if status in (Status.DONE, Status.FAILED) else []
            result = Result(summary=f"Wrote module {p}.{c} and its tests.", notes=["kept the old API"],
                            concerns=["slow on big inputs"], usage=usage) if done else None
            tasks.append(Task(
                id=f"{p}.{c}", title=f"Write module {p}.{c} with tests", kind=Kind.WORK, parent=str(p),
                needs=[f"{p}.{c - 1}"] if c > 1 else [], status=status, attempts=attempts, result=result,
                description=f"Implement module {p}.{c}: parse the input, validate it, write the output.\n"
                            "Keep the public functions documented.\n",
                acceptance=f"`pytest tests/test_{p}_{c}.py` passes.",
            ))
    started = datetime(2025, 1, 1, tzinfo=UTC)
    cycles = [Cycle(number=k, started_at=started, verdict=Verdict.CONTINUE if k < 4 else None, usage=usage,
                    summary=f"cycle {k}: part of the goal is met", done=n // 5, failed=2, duration_s=1800.0)
              for k in range(1, 5)]
    files = {task_path(t.id): dump_task(t) for t in tasks} | {cycle_path(c.number): dump_cycle(c) for c in cycles}
    commit_changes(repo, config.integration.branch, lambda tip: files, f"plan: {len(tasks)} tasks, 4 cycles")
    run = repo.swarm_dir / "runs" / SHOWN_TASK / "c2-a1"
    run.mkdir(parents=True)
    (run / "agent.log").write_text("".join(f"agent step {i}: ran the tests, 120 passed\n" for i in range(200)))
    size = config.pool_size()
    WorktreePool(repo, size).warm(size, repo.branch_tip(config.integration.branch) or "")


def commands() -> tuple[str, list[tuple[str, list[str]]]]:
    """What the table calls each command, and its argv; and how `swarmd` is run."""
    py = sys.executable
    script = Path(py).parent / "swarmd"
    swarmd, how = ([str(script)], f"the console script {script}") if script.exists() else (
        [py, "-m", "swarmd"], f"{py} -m swarmd (no console script beside this Python)")
    return how, [
        ("python -c pass", [py, "-c", "pass"]),
        ("python -m swarmd --version", [py, "-m", "swarmd", "--version"]),
        ("swarmd --version", [*swarmd, "--version"]),
        ("swarmd status", [*swarmd, "status"]),
        ("swarmd tasks", [*swarmd, "tasks"]),
        (f"swarmd show {SHOWN_TASK}", [*swarmd, "show", SHOWN_TASK]),
        ("swarmd log", [*swarmd, "log"]),
    ]


def run_once(argv: list[str], cwd: Path, tty: bool) -> tuple[float, float]:
    """Wall seconds from start to exit, and the CPU seconds the process used (user + system: less
    skewed than wall time by other work on the machine); stdout a pipe, or a pseudo-terminal whose
    output is drained meanwhile."""
    if tty:
        leader, stdout = pty.openpty()
        drain = threading.Thread(target=_drain, args=(leader,))
        drain.start()
    else:
        stdout = subprocess.PIPE
    before, t = _children_cpu(), time.perf_counter()
    proc = subprocess.run(argv, cwd=cwd, env=ENV, stdout=stdout, stderr=subprocess.PIPE)
    took, cpu = time.perf_counter() - t, _children_cpu() - before
    if tty:
        os.close(stdout)
        drain.join()
        os.close(leader)
    if proc.returncode != 0:
        raise RuntimeError(f"{' '.join(argv)} exited {proc.returncode}: {proc.stderr.decode()}")
    return took, cpu


def _children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def _drain(fd: int) -> None:
    try:
        while os.read(fd, 65536):
            pass
    except OSError:  # EIO: the terminal's last writer closed it
        pass


def imported(argv: list[str], cwd: Path) -> list[str]:
    """The modules a command imports (Python's own start-up included), from `-X importtime`."""
    if argv[0] != sys.executable:  # a console script: run its file with this Python
        argv = [sys.executable, *argv]
    proc = subprocess.run([argv[0], "-X", "importtime", *argv[1:]], cwd=cwd, env=ENV, capture_output=True, text=True)
    return [line.rpartition("|")[2].strip() for line in proc.stderr.splitlines()
            if line.startswith("import time:") and "[us]" not in line]


def main() -> None:
    args = parse_args()
    work = args.work or Path(tempfile.mkdtemp(prefix="swarmd-startup-"))
    repo = work / "repo"
    try:
        t = time.perf_counter()
        build_repo(repo, args.tasks, args.files)
        took = time.perf_counter() - t
        print(f"built {repo} ({args.files} files, about {args.tasks} tasks, a warm pool) in {took:.1f} s")
        how, cmds = commands()
        times: dict[str, list[tuple[float, float]]] = {label: [] for label, _ in cmds}
        for _, argv in cmds:  # untimed warm-up: bytecode caches, the page cache
            run_once(argv, repo, args.tty)
        stall, t = cpu_stall(), time.perf_counter()
        for _ in range(args.repeat):
            for label, argv in cmds:
                times[label].append(run_once(argv, repo, args.tty))
        waited = None if stall is None else ((cpu_stall() or stall) - stall) / 1e6 / (time.perf_counter() - t)
        print(f"{machine()}; load average {load_average()}")
        print(f"swarmd run as {how}; stdout {'a pseudo-terminal' if args.tty else 'a pipe'}; "
              f"median of {args.repeat} interleaved runs"
              + ("" if waited is None else f"; something waited for a CPU {waited:.0%} of the time"))
        base = statistics.median(wall for wall, _ in times["python -c pass"])
        print(f"\n{'command':26s} {'wall':>7s} {'ratio':>6s} {'cpu':>7s} {'modules':>8s}  heavy packages imported")
        for label, argv in cmds:
            wall = statistics.median(wall for wall, _ in times[label])
            cpu = statistics.median(cpu for _, cpu in times[label])
            modules = imported(argv, repo)
            heavy = " ".join(h for h in HEAVY if h in modules) or "-"
            print(f"{label:26s} {wall * 1000:4.0f} ms {wall / base:5.1f}x {cpu * 1000:4.0f} ms {len(modules):8d}  "
                  + heavy)
    finally:
        if not args.keep and not args.work:
            shutil.rmtree(work, ignore_errors=True)
        elif args.keep:
            print(f"kept {work}")


if __name__ == "__main__":
    main()
