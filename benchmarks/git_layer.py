"""Benchmark of swarmd's git layer against the git command line, on a generated repository.

    python benchmarks/git_layer.py [--files 20000] [--folders 1000] [--repeat 21] [--slow-repeat 7]
                                   [--landings 1000] [--writers 4] [--seed 1] [--quick] [--work DIR] [--keep]

Cases (each timed operation starts from an equivalent state, prepared untimed; medians in ms):
  (a) integrate a one-file branch into a tip that moved: `land_branch` (in memory, with its compare-and-swap)
      against `git reset --hard <tip>` + `git merge` + `git update-ref` in a kept worktree, and against
      `git merge-tree --write-tree` + `git commit-tree` + `git update-ref <ref> <new> <old>`;
  (b) replay a 3-commit branch onto a tip 2 commits further: `commits_to_replay` + `replay` + a
      compare-and-swap of the branch, against `git rebase` in a worktree that has the branch checked out;
  (c) a worktree ready for a new task: `WorktreePool.acquire` of a worktree that a finished task gave back
      (its branch a few commits from the new commit, ignored build files in it), against
      `git worktree add -b`; the pool's `release` (off the request path) gets its own row;
  (d) one `.swarm/tasks/<id>.yaml` commit with its compare-and-swap: `commit_changes`, against a full
      pygit2 `Index` (read the tip's tree, add the blob, write_tree, commit, compare-and-swap);
  (e) 1,000 prepared one-file branches, each landing with its task's YAML turned `done` in the same commit,
      from 4 writer processes onto one branch: landings per second through `land_branch`, against the git
      command line (the fastest of the routes tried; the output says which), taking turns in 5 rounds, then a
      check that none was lost.
"""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from genrepo import generate  # noqa: E402
from gitbench.bench import Bench, make_tasks  # noqa: E402
from gitbench.land_and_replay import case_a, case_b  # noqa: E402
from gitbench.report import TIMED, machine, report  # noqa: E402
from gitbench.sustained import case_e  # noqa: E402
from gitbench.task_commit import case_d  # noqa: E402
from gitbench.timing import Samples  # noqa: E402
from gitbench.worktree_pool import case_c  # noqa: E402
from hostinfo import load_average  # noqa: E402

from swarmd.store import dump_task, task_path  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--files", type=int, default=20_000)
    parser.add_argument("--folders", type=int, default=1_000)
    parser.add_argument("--repeat", type=int, default=21, help="repetitions of the fast operations")
    parser.add_argument("--slow-repeat", type=int, help="repetitions of the slow baselines (default: repeat/3)")
    parser.add_argument("--landings", type=int, default=1_000)
    parser.add_argument("--writers", type=int, default=4)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--quick", action="store_true", help="a smoke run: 2,000 files, 5 repetitions, 200 landings")
    parser.add_argument("--work", type=Path, help="where to build the repository (default: a temporary folder)")
    parser.add_argument("--keep", action="store_true", help="keep the work folder")
    args = parser.parse_args()
    if args.quick:
        args.files, args.folders, args.repeat, args.landings = 2_000, 100, 5, 200
    slow = args.slow_repeat or max(3, round(args.repeat / 3))
    if args.quick:
        print("--quick: a smoke run on a small repository; the targets are meant for 20,000 files")
    command = (f"python benchmarks/git_layer.py --files {args.files} --folders {args.folders} --repeat {args.repeat} "
               f"--slow-repeat {slow} --landings {args.landings} --writers {args.writers} --seed {args.seed}")
    print(f"command: {command}")
    print(f"machine: {machine()}")
    print(f"load average at the start: {load_average()} (1, 5, 15 min)")
    if args.work:
        args.work.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix="swarmd-bench-", dir=args.work))
    started = time.perf_counter()
    try:
        made = generate(work / "repo", args.files, args.folders, seed=args.seed)
        print(f"repository: {len(made.files)} files in {made.folders} folders, {made.commits} commits, packed; "
              f"main at {made.tip[:12]}; generated in {made.seconds:.1f} s at {made.path}")
        b = Bench(made.path, made.files, args.seed)
        tasks = make_tasks(max(args.landings, 2 * (args.repeat + 1)))
        plan_changes: dict[str, bytes | None] = {task_path(t.id): dump_task(t) for t in tasks}
        plan_changes[".swarm/goal.md"] = b"Change many files, one task each.\n"
        base = b.commit(b.main, plan_changes, "swarmd: the task tree")  # the integration branch's start
        samples, notes = Samples(), []
        steps: list[tuple[str, Callable[[], None]]] = [
            ("a", lambda: case_a(b, args.repeat, slow, samples)),
            ("b", lambda: case_b(b, args.repeat, slow, samples)),
            ("d", lambda: case_d(b, base, tasks, args.repeat, samples)),
            ("e", lambda: case_e(b, base, tasks, args.landings, args.writers, args.repeat, samples, notes)),
            ("c", lambda: case_c(b, args.repeat, slow, samples)),  # last: it writes whole worktrees
        ]
        for name, step in steps:
            t = time.perf_counter()
            step()
            print(f"case ({name}) done in {time.perf_counter() - t:.1f} s", flush=True)
        print()
        for name in sorted(samples.values):
            if not name.endswith("/lost"):
                print(f"  {name:45s} {samples.describe(name)}")
        print()
        print(TIMED)
        print()
        for note in notes:
            print(note)
        print()
        for line in report(samples, args.landings, args.writers):
            print(line)
        print(f"\ntotal {time.perf_counter() - started:.0f} s; ratio = baseline / swarmd (for (e): landings/s ratio); "
              f"load average at the end: {load_average()}")
    finally:
        if args.keep:
            print(f"kept {work}")
        else:
            shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
