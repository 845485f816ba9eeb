"""How big each agent's prompt grows with the plan (issue: bounded context), through the real templates.

    python benchmarks/prompt_size.py [--sizes 100,1000,10000] [--repeat 7] [--seed 1]

For each size it builds a realistic task tree in memory, three levels deep as `limits.depth` allows:
about N^(1/3) top-level plan tasks, as many second-level tasks under each (one in four a work task, the
rest plan tasks), and the remaining work tasks spread over the second-level plan tasks. The plan is half
way through cycle 2: the first 60% of the top-level subtrees are finished (done, with a few failed tasks
and the tasks blocked behind them), the rest are in progress (work done, running and todo). Done tasks
carry handoffs (a summary of a few sentences, sometimes notes, concerns and follow-ups), failed ones the
reasons of their attempts, and every task a description and an acceptance.

It renders, with `daemon/briefing.py` and `prompts.render` (the built-in templates):
  root planner   cycle 2's root planner, with the judge's notes from cycle 1
  sub-planner    the planner of a second-level plan task in progress, woken: all its tasks finished
  worker         a todo work task of that kind of subtree
  judge          the judge of cycle 2, with a passing `verify.command`

and prints each prompt's size in bytes, its ratio to the size at the first size given (100 tasks by
default), and the time to build the context and render it (median of --repeat runs). Sizes are
deterministic for a seed; times depend on the machine.
"""

from __future__ import annotations

import argparse
import platform
import random
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from swarmd import prompts
from swarmd.daemon import briefing
from swarmd.tasks import Attempt, Cycle, Kind, Outcome, Result, RootPlanner, Status, Task, Verdict

ROLES = ("root planner", "sub-planner", "worker", "judge")
TARGET = 2.0  # a prompt at the largest size at most twice its size at the smallest
WORDS = (
    "parser config loader cache index report export command option flag schema handler request response "
    "client server token query record entry node branch commit merge retry timeout limit output format "
    "module function class test fixture error message path file folder reader writer table column value"
).split()
GOAL = """# Goal

Turn `ledger` into a tool a small team can rely on: import bank statements (CSV, OFX, QIF) into one
journal, categorise transactions with rules the user writes, report by month, category and account
(text, CSV and JSON), and reconcile the journal against a statement. Every command has tests, the
README documents each one with an example, and `make check` (ruff, mypy --strict, pytest) passes.

Keep the on-disk journal format backwards compatible: journals written by version 1.x must still load.
Performance: importing 100,000 transactions takes under 5 s on a laptop, and a report over them under 1 s.
"""


def _text(rng: random.Random, words: int) -> str:
    return " ".join(rng.choice(WORDS) for _ in range(words)).capitalize() + "."


def _sentences(rng: random.Random, low: int, high: int) -> str:
    return " ".join(_text(rng, rng.randint(8, 16)) for _ in range(rng.randint(low, high)))


def _handoff(rng: random.Random) -> Result:
    return Result(
        summary=_sentences(rng, 2, 5),
        notes=[_text(rng, 14) for _ in range(rng.choice((0, 0, 1, 2)))],
        concerns=[_text(rng, 18) for _ in range(rng.choice((0, 0, 0, 0, 1)))],
        follow_ups=[_text(rng, 12) for _ in range(rng.choice((0, 0, 0, 0, 1)))],
    )


def _task(rng: random.Random, task_id: str, kind: Kind, status: Status, cycle: int, needs: list[str]) -> Task:
    attempts: list[Attempt] = []
    result = None
    if status is Status.DONE:
        if rng.random() < 0.15:
            attempts.append(Attempt(number=1, cycle=cycle, outcome=Outcome.FAILED, seconds=300.0,
                                    reason=f"exited with status 1; its log is /repo/.git/swarm/runs/{task_id}/c{cycle}-a1/agent.log"))
        attempts.append(Attempt(number=len(attempts) + 1, cycle=cycle, outcome=Outcome.LANDED, seconds=420.0))
        result = _handoff(rng)
    elif status is Status.FAILED:
        attempts = [Attempt(number=n, cycle=cycle, outcome=Outcome.FAILED, seconds=600.0,
                            reason=f"exited with status 1; its log is /repo/.git/swarm/runs/{task_id}/c{cycle}-a{n}/agent.log")
                    for n in (1, 2, 3)]
    elif status is Status.RUNNING and kind is Kind.PLAN:
        attempts = [Attempt(number=1, cycle=cycle, outcome=Outcome.LANDED, seconds=200.0)]
    return Task(
        id=task_id, title=_text(rng, rng.randint(4, 9)).rstrip("."), kind=kind, status=status,
        parent=task_id.rpartition(".")[0] or None, needs=needs,
        description=_sentences(rng, 2, 6), acceptance=f"pytest tests/test_{rng.choice(WORDS)}.py passes and make check exits 0",
        attempts=attempts, result=result,
    )


@dataclass(frozen=True)
class Tree:
    tasks: dict[str, Task]
    subplanner: str  # a woken second-level planner in an active subtree
    worker: str  # a todo work task


def build_tree(size: int, seed: int) -> Tree:
    """About `size` tasks, three levels deep; see the module's docstring."""
    rng = random.Random(seed)
    width = max(2, round(size ** (1 / 3)))
    second = [(top, n) for top in range(1, width + 1) for n in range(1, width + 1)]
    plans = [(top, n) for top, n in second if n % 4 != 0]  # every fourth second-level task is work
    leaves = size - width - len(second)
    per_plan = {key: leaves // len(plans) + (1 if i < leaves % len(plans) else 0) for i, key in enumerate(plans)}
    finished_tops = round(width * 0.6)
    woken = plans[[top for top, _ in plans].index(finished_tops + 1)]  # the first plan of the first active subtree
    tasks: dict[str, Task] = {}
    worker = ""
    for top in range(1, width + 1):
        active = top > finished_tops
        cycle = 2 if active else 1
        tasks[str(top)] = _task(rng, str(top), Kind.PLAN, Status.RUNNING if active else Status.DONE, cycle, [])
        for n in range(1, width + 1):
            mid = f"{top}.{n}"
            if (top, n) not in per_plan:
                status = rng.choice((Status.DONE, Status.TODO)) if active else Status.DONE
                tasks[mid] = _task(rng, mid, Kind.WORK, status, cycle, [])
                continue
            finished = not active or (top, n) == woken
            tasks[mid] = _task(rng, mid, Kind.PLAN, Status.RUNNING if active else Status.DONE, cycle, [])
            failed = ""
            for leaf in range(1, per_plan[(top, n)] + 1):
                task_id = f"{mid}.{leaf}"
                needs = [f"{mid}.{leaf - 1}"] if leaf > 1 and rng.random() < 0.3 else []
                if failed and needs == [failed]:
                    status = Status.BLOCKED
                elif finished:
                    status = Status.FAILED if rng.random() < 0.03 else Status.DONE
                else:
                    status = rng.choices((Status.DONE, Status.RUNNING, Status.TODO, Status.FAILED), (50, 10, 35, 5))[0]
                if status is Status.FAILED:
                    failed = task_id
                if status is Status.TODO and not worker and active:
                    worker = task_id
                tasks[task_id] = _task(rng, task_id, Kind.WORK, status, cycle, needs)
    return Tree(tasks, f"{woken[0]}.{woken[1]}", worker)


def prompt_of(role: str, tree: Tree, workdir: Path) -> str:
    cycle = Cycle(number=2, root=RootPlanner(status=Status.RUNNING))
    last = Cycle(number=1, verdict=Verdict.CONTINUE, summary=_sentences(random.Random(0), 3, 3),
                 notes=[_text(random.Random(n), 20) for n in range(3)])
    if role == "root planner":
        context = briefing.planner(GOAL, cycle, last, tree.tasks, "root", 3)
    elif role == "sub-planner":
        context = briefing.planner(GOAL, cycle, last, tree.tasks, tree.subplanner, 3)
    elif role == "worker":
        context = briefing.worker(GOAL, cycle, last, tree.tasks[tree.worker], 1, ())
    else:
        verify = {"command": "make check", "passed": True, "commit": "0123456789abcdef", "output": ""}
        context = briefing.judge(GOAL, cycle, tree.tasks, verify)
    template = "judge" if role == "judge" else "worker" if role == "worker" else "planner"
    return prompts.render(template, workdir, context)


def median_ms(work: Callable[[], Any], repeat: int) -> float:
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        work()
        times.append(time.perf_counter() - start)
    return 1000 * statistics.median(times)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", default="100,1000,10000", help="comma-separated numbers of tasks")
    parser.add_argument("--repeat", type=int, default=7, help="runs timed per prompt; the median is shown")
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args()
    sizes = [int(s) for s in args.sizes.split(",")]
    print(f"Python {platform.python_version()} on {platform.machine()}; render time is the median of {args.repeat} runs")
    print()
    sizes_of: dict[tuple[int, str], int] = {}
    rows = []
    with tempfile.TemporaryDirectory() as folder:  # no .swarm/prompts/ here: the built-in templates
        workdir = Path(folder)
        for size in sizes:
            tree = build_tree(size, args.seed)
            kinds = sum(1 for t in tree.tasks.values() if t.kind is Kind.PLAN)
            print(f"{len(tree.tasks):,} tasks ({kinds:,} plan, {len(tree.tasks) - kinds:,} work); "
                  f"sub-planner {tree.subplanner} (depth {tree.subplanner.count('.') + 1}), worker {tree.worker}")
            for role in ROLES:
                text = prompt_of(role, tree, workdir)
                sizes_of[(size, role)] = len(text.encode())
                ms = median_ms(lambda: prompt_of(role, tree, workdir), args.repeat)
                rows.append((size, len(tree.tasks), role, sizes_of[(size, role)], ms))
    print()
    print(f"{'tasks':>7}  {'role':<13} {'bytes':>8}  {'x ' + f'{sizes[0]:,}':>8}  {'render ms':>9}")
    for size, count, role, size_bytes, ms in rows:
        ratio = size_bytes / sizes_of[(sizes[0], role)]
        print(f"{count:>7,}  {role:<13} {size_bytes:>8,}  {ratio:>7.2f}x  {ms:>9.1f}")
    print()
    print(f"targets (a prompt at {sizes[-1]:,} tasks at most {TARGET:g}x its size at {sizes[0]:,}):")
    missed = 0
    for role in ROLES:
        ratio = sizes_of[(sizes[-1], role)] / sizes_of[(sizes[0], role)]
        met = ratio <= TARGET
        missed += not met
        print(f"  [{'met' if met else 'MISSED':6s}] {role}: {ratio:.2f}x")
    return 1 if missed else 0


if __name__ == "__main__":
    sys.exit(main())
