"""Benchmark of the swarm harness's own overhead (issue 4, item 14), against the flat design that failed.

    python benchmarks/swarm.py [--sizes 10,50,100] [--sleep 5] [--repeat 3] [--quick] [--profile]
                               [--no-sync] [--wait-quiet SECONDS] [--designs warm,cold,flat] [--work DIR] [--keep]

Every agent is the same bash worker script: sleep, write `work/<task id>.txt`, `git add` + `git commit`,
exit 0; it measures its own seconds (start to exit) into a file outside the repository. The repository
has 500 files (benchmarks/genrepo.py). For each N there are N work tasks and N workers allowed:

  swarmd, warm pool  the N tasks are committed up front on the integration branch (as a root planner would,
                     with `commit_changes` + `dump_task`), the worktree pool is filled (untimed, `config
                     .pool_size` worktrees) before the daemon starts; the daemon runs one cycle in a process
                     of its own (`--child`): a root planner that adds nothing, the N workers, a judge that
                     says stop.
  swarmd, cold pool  the same without worktrees at the start: the daemon creates them.
  flat design        N agent processes claim tasks from ONE shared YAML file under a filelock.FileLock (at
                     its default poll interval, each agent's first try at a random phase), run the same
                     worker script in a worktree of their own (made ahead of time), and land with `git merge`
                     in ONE shared checkout while holding that same lock, marking the task done in the file.

Effective parallelism = sum of the workers' own seconds / wall seconds from the first worker launch (the
daemon's "worker N started" line; flat: the first claim) to the last landing ("landed N at ..."; flat: the
last merge); the ideal is N. Each design and N runs `--repeat` times, the designs taking turns; the table
shows the run with the median parallelism and the range over the runs. The daemon's CPU time (its own
process, during `Daemon.run`) and peak RSS come from getrusage in the child; the CPU of the git commands it
runs is its RUSAGE_CHILDREN less what the agent scripts report (bash's `times`). The "where the wall time
went" rows come from the same stamps.

Before each run the setup is written to disk (os.sync), as it is for a pool that has existed more than
~30 s; `--no-sync` skips that. Other work on the machine skews everything here (2 cores): each run says how
much of its time something waited for a CPU (/proc/pressure/cpu), and `--wait-quiet` waits for a quiet
moment before each run. `--profile` runs the daemon child under cProfile (the main thread: the loop) and
prints where the loop's time went, then the top functions by cumulative time; profiling slows the daemon,
so the figures of a profiled run are not the benchmark's.
"""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
import time
from pathlib import Path

from hostinfo import load_average
from swarmbench.daemon_child import child_main
from swarmbench.daemon_run import run_swarm
from swarmbench.flat_agent import flat_agent_main
from swarmbench.flat_run import run_flat
from swarmbench.measured import Run
from swarmbench.noise import cpu_stall, wait_quiet
from swarmbench.report import fmt_par, machine, median_run, parallelism_range, table
from swarmbench.repos import FILES, FOLDERS
from swarmbench.scripts import write_scripts
from swarmbench.targets import targets


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", help="comma-separated N (default 10,50,100; --quick: 5,10)")
    parser.add_argument("--sleep", type=float, help="seconds each worker sleeps (default 5; --quick: 1)")
    parser.add_argument("--quick", action="store_true", help="a smoke run: sizes 5,10, sleep 1 s")
    parser.add_argument("--profile", action="store_true",
                        help="run the daemon child under cProfile and print its top functions by cumulative time")
    parser.add_argument("--flat-poll", type=float, default=0.05,
                        help="seconds between the flat agents' tries for the filelock (filelock's default is 0.05)")
    parser.add_argument("--repeat", type=int, help="runs of each design and N; the median is shown (default 3; "
                        "--quick: 1)")
    parser.add_argument("--wait-quiet", type=float, default=0.0, metavar="SECONDS",
                        help="before each run, wait up to this long for the CPUs to be quiet (other work on the machine "
                        "skews every figure)")
    parser.add_argument("--no-sync", action="store_true",
                        help="do not write the setup (the warm pool, the flat design's worktrees) to disk before a run")
    parser.add_argument("--designs", default="warm,cold,flat", help="which of warm,cold,flat to run")
    parser.add_argument("--work", type=Path, help="where to build the repositories (default: a temporary folder)")
    parser.add_argument("--keep", action="store_true", help="keep the work folder (repositories, logs, profiles)")
    parser.add_argument("--verbose", action="store_true", help="the daemon's log lines go to its child.log too")
    # internal entry points: the benchmark runs this script again as the daemon child and as the flat agents
    parser.add_argument("--child", help=argparse.SUPPRESS)
    parser.add_argument("--flat-agent", help=argparse.SUPPRESS)
    parser.add_argument("--agent", help=argparse.SUPPRESS)
    parser.add_argument("--script", help=argparse.SUPPRESS)
    parser.add_argument("--workers", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--out", help=argparse.SUPPRESS)
    parser.add_argument("--profile-out", help=argparse.SUPPRESS)
    parser.add_argument("--poll", type=float, default=0.05, help=argparse.SUPPRESS)
    return parser.parse_args()


def run_all(args: argparse.Namespace, work: Path, scripts: dict[str, Path], sizes: list[int], sleep: float,
            designs: list[str], repeat: int, sync: bool) -> dict[tuple[str, int], list[Run]]:
    """Every design at every N, `repeat` times, printing a line per run; the runs of each design and N."""
    every: dict[tuple[str, int], list[Run]] = {}
    for n in sizes:
        for rep in range(repeat):  # the designs take turns, so a burst of load elsewhere hits them alike
            for design in designs:
                quiet = wait_quiet(args.wait_quiet) if args.wait_quiet else None
                t, stall = time.perf_counter(), cpu_stall()
                if design == "flat":
                    run = run_flat(work / f"r{rep + 1}", n, sleep, scripts, args.flat_poll, sync)
                else:
                    run = run_swarm(work / f"r{rep + 1}", n, design == "warm", sleep, scripts, args.profile,
                                    args.verbose, sync)
                every.setdefault((design, n), []).append(run)
                state = "ok" if run.ok else "PROBLEMS"
                took = time.perf_counter() - t
                after = cpu_stall()
                pressure = "" if stall is None or after is None else (
                    f", something waited for a CPU {(after - stall) / 1e6 / took:.0%} of the time"
                    + ("" if quiet is None else f" ({quiet:.0%} just before)"))
                print(f"  ran {design:4s} N = {n:3d} #{rep + 1}: {fmt_par(run):>18s}  (setup {run.setup_s:.1f} s, "
                      f"total {took:.1f} s{pressure}) {state}", flush=True)
                for problem in run.problems:
                    print(f"    problem: {problem}")
    return every


def print_results(every: dict[tuple[str, int], list[Run]], sizes: list[int], repeat: int, profile: bool) -> None:
    """The table, the targets and (with --profile) where the daemon's time went."""
    runs = {key: median_run(found) for key, found in every.items()}
    print()
    if repeat > 1:
        print(f"each figure below is from the run with the median parallelism of {repeat} "
              "(the range of the parallelism over the runs in brackets; a failed run counts as the lowest)")
    spread = {key: parallelism_range(found) for key, found in every.items()} if repeat > 1 else {}
    for line in table(runs, sizes, spread):
        print(line)
    print()
    print("targets:")
    for text, met, value in targets(runs, every):
        verdict = "not run" if met is None else ("met" if met else "MISSED")
        print(f"  [{verdict:7s}] {text}: {value}")
    if profile:
        for (design, n), run in runs.items():
            if run.profile:
                print(f"\nprofile of the daemon (cProfile), {design} pool, N = {n}; the parallelism of this "
                      f"profiled run was {fmt_par(run).strip()}")
                print(run.profile)


def main() -> int:
    args = parse_args()
    if args.child:
        return child_main(args)
    if args.flat_agent:
        return flat_agent_main(args)

    sizes = [int(x) for x in (args.sizes or ("5,10" if args.quick else "10,50,100")).split(",")]
    sleep = args.sleep if args.sleep is not None else (1.0 if args.quick else 5.0)
    designs = [d.strip() for d in args.designs.split(",") if d.strip()]
    repeat = args.repeat or (1 if args.quick else 3)
    sync = not args.no_sync
    command = (f"python benchmarks/swarm.py --sizes {','.join(map(str, sizes))} --sleep {sleep:g} --repeat {repeat}"
               + (" --profile" if args.profile else "") + (" --no-sync" if args.no_sync else ""))
    print(f"command: {command}")
    print(f"machine: {machine()}")
    print(f"load average at the start: {load_average()} (1, 5, 15 min)")
    print(f"repository: {FILES} files in {FOLDERS} folders; workers: bash, sleep {sleep:g} s, write one file, "
          "git add + commit, exit 0")
    print("before each run the setup is written to disk (os.sync), as for a pool that has existed a while" if sync
          else "--no-sync: the setup stays in the page cache (removing its files costs no discard)")
    if args.quick:
        print("--quick: a smoke run; the targets are meant for N = 10, 50, 100 with 5 s workers")
    if args.profile:
        print("--profile: the daemon runs under cProfile, which slows it: these figures are not the benchmark's")
    if args.work:
        args.work.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix="swarmd-swarm-bench-", dir=args.work))
    scripts = write_scripts(work / "scripts")
    every: dict[tuple[str, int], list[Run]] = {}
    started = time.perf_counter()
    try:
        every = run_all(args, work, scripts, sizes, sleep, designs, repeat, sync)
        print_results(every, sizes, repeat, args.profile)
        print(f"\ntotal {time.perf_counter() - started:.0f} s; load average at the end: {load_average()}")
    finally:
        if args.keep:
            print(f"kept {work}")
        else:
            shutil.rmtree(work, ignore_errors=True)
    return 0 if all(run.ok for found in every.values() for run in found) else 1


if __name__ == "__main__":
    sys.exit(main())
