"""The writer processes of case (e): each route (swarmd's `land_branch`, the CLI) gets its own writer
processes that live through the whole case and land their share of the branches round by round, the routes
taking turns so that a change in the machine's load falls on both alike.

`writer` runs in a process started with multiprocessing's "spawn", which imports it from this module (the
parent's sys.path, with benchmarks/ on it, is handed to the child).
"""

from __future__ import annotations

import multiprocessing as mp
import tempfile
import time
import traceback
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from gitbench.bench import Bench, Job, done
from gitbench.cli_landing import Plumbing, cli_land
from gitbench.timing import rotate
from gitcmd import ENV

from swarmd.git.landing import land_branch
from swarmd.git.repo import Repo
from swarmd.store import dump_task, task_path


def writer(route: str, repo_path: str, branch: str, rounds: list[list[Job]], go, results) -> None:  # noqa: ANN001
    """One writer process, alive for the whole run: for each round, wait until the parent lets this route's
    writers go, land this writer's share of the round's branches, report."""
    try:
        cwd = Path(repo_path)
        repo = Repo.at(cwd)  # one long-lived Repo per writer, as in a daemon
        plumbing = Plumbing(cwd) if route == "cli, co-processes" else None
        index_file = Path(tempfile.mkstemp(prefix="bench-index-")[1])
        index_file.unlink()
        index_env = {**ENV, "GIT_INDEX_FILE": str(index_file)}
        for jobs in rounds:
            tries = 0
            go.wait()
            start = time.monotonic()
            for job in jobs:
                if route == "swarmd":
                    path = task_path(job.task.id)
                    landed = land_branch(repo, branch, job.head, message=f"land task {job.task.id}", base=job.fork,
                                         build=lambda tip, task=job.task, path=path: {path: dump_task(done(task))})
                    if landed.commit is None:
                        raise RuntimeError(f"land_branch did not land {job.head}: {landed}")
                    tries += landed.tries
                else:
                    tries += cli_land(cwd, f"refs/heads/{branch}", job, route, plumbing, index_env)
            results.put(("ok", start, time.monotonic(), tries))
        if plumbing:
            plumbing.close()
        index_file.unlink(missing_ok=True)
    except BaseException:  # noqa: BLE001 - reported to the parent, which fails the run
        results.put(("error", traceback.format_exc()))


@dataclass
class Writers:
    """`count` writer processes of one route, landing onto `branch` round by round."""

    route: str
    branch: str
    count: int
    go: Any = None
    results: Any = None
    procs: list[Any] = field(default_factory=list)
    walls: list[float] = field(default_factory=list)
    tries: int = 0

    def start(self, ctx: Any, repo: Path, rounds: list[list[Job]]) -> None:
        self.go, self.results = ctx.Barrier(self.count + 1), ctx.Queue()  # the parent is the extra party
        for k in range(self.count):
            share = [jobs[k::self.count] for jobs in rounds]
            proc = ctx.Process(target=writer, args=(self.route, str(repo), self.branch, share, self.go, self.results))
            proc.start()
            self.procs.append(proc)

    def run_round(self) -> None:
        self.go.wait(timeout=600)
        reports = [self.results.get(timeout=1800) for _ in self.procs]
        errors = [r[1] for r in reports if r[0] == "error"]
        if errors:
            raise RuntimeError(f"a {self.route} writer failed:\n" + "\n".join(errors))
        self.walls.append(max(r[2] for r in reports) - min(r[1] for r in reports))
        self.tries += sum(r[3] for r in reports)

    def stop(self) -> None:
        for proc in self.procs:
            proc.join(timeout=60)


def run_interleaved(b: Bench, routes: dict[str, str], jobs: list[Job], writers: int, rounds: int) -> dict[str, Writers]:
    """Land `jobs` once per route, each route onto its own branch with its own `writers` processes. The jobs
    are split into `rounds` rounds, and the routes take turns round by round (only one route runs at a time),
    so a change in the machine's load falls on both alike; the writer processes live through all rounds."""
    ctx = mp.get_context("spawn")
    size = -(-len(jobs) // rounds)
    chunks = [jobs[k:k + size] for k in range(0, len(jobs), size)]
    groups = {route: Writers(route, branch, writers) for route, branch in routes.items()}
    for group in groups.values():
        group.start(ctx, b.path, chunks)
    try:
        for number in range(len(chunks)):
            for route in rotate(list(groups), number):
                groups[route].run_round()
    finally:
        for group in groups.values():
            group.stop()
    return groups
