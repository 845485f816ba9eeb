"""Case (e): sustained landings, many prepared one-file branches landing onto one branch from several writer
processes, each with its task's YAML turned `done` in the same commit; first the fastest CLI route is
picked, then both routes land every branch, and a check that none was lost."""

from __future__ import annotations

import time

from gitbench.bench import Bench, Job
from gitbench.cli_landing import Plumbing, cli_land
from gitbench.timing import Samples, ms_since, quiet_disk, rotate
from gitbench.writers import run_interleaved
from gitcmd import ENV

from swarmd.store import read_tree, task_path
from swarmd.tasks import Status, Task

FORK_POINTS = 10  # the branches of (e) start from the last 10 tips before the run


def verify_landings(b: Bench, branch: str, start: str, jobs: list[Job]) -> list[str]:
    """Every branch's change and every task's `done` in the final tip, each task file changed in the
    landing commit of its own branch, one first-parent commit per landing."""
    problems = []
    tip = b.raw[b.repo.branch_tip(branch)]
    by_head = {job.head: job for job in jobs}
    first_parent, commit, seen = 0, tip, set()
    while str(commit.id) != start:
        first_parent += 1
        job = by_head.get(str(commit.parent_ids[1])) if len(commit.parent_ids) == 2 else None
        if job is None:
            problems.append(f"first-parent commit {commit.id} is not the landing of a prepared branch")
        else:
            seen.add(job.head)
            path = task_path(job.task.id)
            if commit.tree[path].id == commit.parents[0].tree[path].id:
                problems.append(f"task {job.task.id}'s YAML did not change in its landing commit {commit.id}")
        commit = commit.parents[0]
    if first_parent != len(jobs):
        problems.append(f"{first_parent} first-parent commits, expected {len(jobs)}")
    missing = [job for job in jobs if job.head not in seen]
    if missing:
        problems.append(f"{len(missing)} branches have no landing commit")
    tree = read_tree(b.repo, str(tip.id))
    problems.extend(tree.problems)
    for job in jobs:
        if tip.tree[job.changed].id != b.raw[job.head].tree[job.changed].id:
            problems.append(f"the change of {job.head} to {job.changed} is not in the tip")
        task = tree.tasks.get(job.task.id)
        if task is None or task.status != Status.DONE:
            problems.append(f"task {job.task.id} is not done in the tip")
    return problems


def case_e(b: Bench, base: str, tasks: list[Task], landings: int, writers: int, reps: int,
           s: Samples, notes: list[str]) -> None:
    # The integration branch moves FORK_POINTS times before the run; branch k starts from one of those tips.
    forks = [base]
    for _ in range(FORK_POINTS - 1):
        forks.append(b.change_files(forks[-1], 1, "the integration branch moved")[0])
    start = forks[-1]
    jobs = []
    for k, task in enumerate(tasks[1:landings + 1]):
        fork = forks[k % FORK_POINTS]
        head, changes = b.change_files(fork, 1, f"task {task.id}: change one file")
        b.set_ref(f"refs/heads/bench/e/task-{task.id}", head)
        jobs.append(Job(head, fork, task, next(iter(changes))))

    # Which CLI route is fastest? One writer, single landings from an equivalent state, same branches.
    routes = ["cli, co-processes", "cli, temporary index"]
    index_file = b.path.parent / "bench-index"
    index_env = {**ENV, "GIT_INDEX_FILE": str(index_file)}
    plumbing = Plumbing(b.path)
    for rep in range(reps + 1):
        for route in rotate(routes, rep):
            ref = f"refs/heads/bench/e/single-{routes.index(route)}"
            b.set_ref(ref, start)
            job = jobs[rep % len(jobs)]
            t = time.perf_counter()
            cli_land(b.path, ref, job, route, plumbing if route == routes[0] else None, index_env)
            if rep:
                s.add(f"e1/{route}", ms_since(t))
    plumbing.close()
    route = min(routes, key=lambda r: s.med(f"e1/{r}"))
    notes.append(f"(e) CLI route used: {route!r} (fastest of {', '.join(repr(r) for r in routes)} "
                 "for one landing with one writer)")
    quiet_disk()

    branches = {route: "bench/e/cli", "swarmd": "bench/e/swarmd"}
    for branch in branches.values():
        b.set_ref(f"refs/heads/{branch}", start)
    groups = run_interleaved(b, branches, jobs, writers, rounds=5)
    for name, group in groups.items():
        problems = verify_landings(b, group.branch, start, jobs)
        key = "swarmd" if name == "swarmd" else "cli"
        wall = sum(group.walls)
        s.add(f"e/{key}", wall * 1000 / len(jobs))
        s.values[f"e/{key}/lost"] = [float(len(problems))]
        per_round = ", ".join(f"{len(jobs) / len(group.walls) / w:.0f}" for w in group.walls)
        notes.append(f"(e) {name}: {len(jobs)} landings in {wall:.2f} s = {len(jobs) / wall:.0f} landings/s, "
                     f"{group.tries - len(jobs)} lost races retried, "
                     + ("none lost (verified)" if not problems else f"PROBLEMS: {problems[:5]}")
                     + f"; landings/s in each of the {len(group.walls)} rounds: {per_round}")
