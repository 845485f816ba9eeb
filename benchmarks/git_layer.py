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
import multiprocessing as mp
import os
import platform
import random
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pygit2

sys.path.insert(0, str(Path(__file__).resolve().parent))

from genrepo import generate  # noqa: E402

from swarmd.git.landing import commit_changes, land_branch  # noqa: E402
from swarmd.git.pool import WorktreePool  # noqa: E402
from swarmd.git.replay import commits_to_replay, replay  # noqa: E402
from swarmd.git.repo import Repo  # noqa: E402
from swarmd.git.trees import apply_changes  # noqa: E402
from swarmd.store import dump_task, read_tree, task_path  # noqa: E402
from swarmd.tasks import Kind, Result, Status, Task, transition  # noqa: E402

ENV = {key: value for key, value in os.environ.items() if not key.startswith("GIT_")}
SIG = pygit2.Signature("Bench Person", "bench@example.com")
FORK_POINTS = 10  # the branches of (e) start from the last 10 tips before the run


# -- small helpers -----------------------------------------------------------------------------


def git(cwd: Path, *args: str, data: bytes | None = None, env: dict[str, str] | None = None) -> str:
    proc = subprocess.run(["git", *args], cwd=cwd, env=env or ENV, input=data, capture_output=True)
    if proc.returncode != 0:
        raise RuntimeError(f"git {' '.join(args)} in {cwd} exited {proc.returncode}: {proc.stderr.decode()}")
    return proc.stdout.decode().strip()


def ms_since(start: float) -> float:
    return (time.perf_counter() - start) * 1000


def median(values: list[float]) -> float:
    return statistics.median(values)


def rotate(items: list[str], by: int) -> list[str]:
    by %= len(items)
    return items[by:] + items[:by]


def quiet_disk() -> None:
    """Flush dirty pages between cases, so one case's writes are not paid by the next one."""
    os.sync()
    time.sleep(0.2)


@dataclass
class Samples:
    values: dict[str, list[float]] = field(default_factory=dict)

    def add(self, name: str, value: float) -> None:
        self.values.setdefault(name, []).append(value)

    def med(self, name: str) -> float:
        return median(self.values[name])

    def describe(self, name: str) -> str:
        v = sorted(self.values[name])
        return f"median {median(v):8.2f} ms   min {v[0]:8.2f}   max {v[-1]:8.2f}   n={len(v)}"


class Bench:
    """The generated repository, and untimed helpers to prepare each case."""

    def __init__(self, path: Path, files: list[str], seed: int) -> None:
        self.path = path
        self.repo = Repo.at(path)  # for preparing and checking, untimed
        self.raw = self.repo.raw
        self.daemon = Repo.at(path)  # the long-lived Repo that swarmd's timed calls use; it never prepares anything
        self.main = str(self.raw.references["refs/heads/main"].target)
        self.rng = random.Random(seed + 1)
        self.unused = [name for name in files if name not in (".gitignore", "README.md")]
        self.rng.shuffle(self.unused)
        self.changes = 0

    def pick(self) -> str:
        """A tracked file no earlier step has changed, so prepared changes never overlap."""
        return self.unused.pop()

    def changed(self, commit: str, path: str) -> bytes:
        self.changes += 1
        old = self.raw.revparse_single(f"{commit}:{path}").data
        return old + f"# change {self.changes}\n".encode()

    def commit(self, parent: str, changes: dict[str, bytes | None], message: str) -> str:
        base = self.raw[parent].peel(pygit2.Commit)
        tree = apply_changes(self.raw, base.tree_id, changes)
        return str(self.raw.create_commit(None, SIG, SIG, message, tree, [base.id]))

    def change_files(self, parent: str, count: int, message: str) -> tuple[str, dict[str, bytes | None]]:
        changes: dict[str, bytes | None] = {}
        for _ in range(count):
            name = self.pick()
            changes[name] = self.changed(parent, name)
        return self.commit(parent, changes, message), changes

    def set_ref(self, name: str, commit: str) -> None:
        self.raw.references.create(name, pygit2.Oid(hex=commit), force=True)

    def expected_tree(self, onto: str, changes: dict[str, bytes | None]) -> str:
        return str(apply_changes(self.raw, self.raw[onto].peel(pygit2.Commit).tree_id, changes))


def make_tasks(count: int) -> list[Task]:
    plan = Task(id="1", title="benchmark plan", kind=Kind.PLAN, status=Status.RUNNING, parent=None)
    work = [
        Task(id=f"1.{k}", title=f"change number {k}", kind=Kind.WORK, status=Status.RUNNING, parent="1",
             description=f"Change one file and land it (task {k} of {count}).")
        for k in range(1, count + 1)
    ]
    return [plan, *work]


def done(task: Task) -> Task:
    return transition(task, Status.DONE).model_copy(update={"result": Result(summary=f"landed task {task.id}")})


# -- (a) integrate a one-file branch into a tip that moved --------------------------------------


def case_a(b: Bench, reps: int, slow: int, s: Samples) -> None:
    wt = b.path.parent / "kept-merge-worktree"
    git(b.path, "worktree", "add", "-q", "--detach", str(wt), b.main)
    quiet_disk()
    methods = ["swarmd", "swarmd, repository opened per landing", "git merge-tree route", "git merge in a worktree"]
    for rep in range(reps + 1):  # the first round warms up and is not counted
        for name in rotate(methods, rep):
            if name == "git merge in a worktree" and rep > slow:
                continue
            branch = f"bench/a/{rep}/{methods.index(name)}"
            head, head_changes = b.change_files(b.main, 1, "one-file task branch")
            tip, _ = b.change_files(b.main, 1, "the tip moved")
            b.set_ref(f"refs/heads/{branch}", tip)
            expected = b.expected_tree(tip, head_changes)
            message = f"land {head[:8]}"
            start = time.perf_counter()
            if name == "swarmd":
                land_branch(b.daemon, branch, head, message=message, base=b.main)
            elif name == "swarmd, repository opened per landing":
                land_branch(Repo.at(b.path), branch, head, message=message, base=b.main)
            elif name == "git merge-tree route":
                tree = git(b.path, "merge-tree", "--write-tree", tip, head).splitlines()[0]
                new = git(b.path, "commit-tree", tree, "-p", tip, "-p", head, "-m", message)
                git(b.path, "update-ref", f"refs/heads/{branch}", new, tip)
            else:
                git(wt, "reset", "-q", "--hard", tip)
                git(wt, "merge", "-q", "--no-edit", "-m", message, head)
                git(wt, "update-ref", f"refs/heads/{branch}", "HEAD", tip)
            elapsed = ms_since(start)
            commit = b.raw[b.repo.branch_tip(branch)]
            assert [str(p) for p in commit.parent_ids] == [tip, head], (name, commit.parent_ids)
            assert str(commit.tree_id) == expected, f"{name}: wrong tree"
            if rep:
                s.add(f"a/{name}", elapsed)


# -- (b) replay a 3-commit branch onto a moved tip ----------------------------------------------


def case_b(b: Bench, reps: int, slow: int, s: Samples) -> None:
    wt = b.path.parent / "kept-rebase-worktree"
    git(b.path, "worktree", "add", "-q", "--detach", str(wt), b.main)
    quiet_disk()
    methods = ["swarmd", "git rebase in a worktree"]
    for rep in range(reps + 1):
        for name in rotate(methods, rep):
            if name == "git rebase in a worktree" and rep > slow:
                continue
            ref = f"refs/heads/bench/b/{rep}/{methods.index(name)}"
            first, third = b.pick(), b.pick()
            new_file = f"{first.rpartition('/')[0]}/added_{rep}_{methods.index(name)}.py"
            c1 = b.commit(b.main, {first: b.changed(b.main, first)}, "step 1: change a file")
            c2 = b.commit(c1, {new_file: b"def added():\n    return 1\n"}, "step 2: add a file")
            changes = {first: b.changed(c2, first) + b"# again\n", third: b.changed(c2, third)}
            head = b.commit(c2, changes, "step 3: change two files")
            b.set_ref(ref, head)
            t1, _ = b.change_files(b.main, 1, "the tip moved")
            tip, _ = b.change_files(t1, 1, "the tip moved again")
            final = {path: b.raw.revparse_single(f"{head}:{path}").data for path in (first, new_file, third)}
            expected = b.expected_tree(tip, final)
            if name == "git rebase in a worktree":
                git(wt, "checkout", "-q", "-f", ref.removeprefix("refs/heads/"))
            start = time.perf_counter()
            if name == "swarmd":
                commits = commits_to_replay(b.daemon, head, tip)
                replayed = replay(b.daemon, commits, tip)
                branch = b.daemon.raw.references.get(ref)
                assert str(branch.target) == head, "the branch moved: a real caller would start again"
                branch.set_target(pygit2.Oid(hex=replayed.head), "swarmd: replay")
            else:
                git(wt, "rebase", "-q", tip)
            elapsed = ms_since(start)
            new = b.raw[b.repo.ref_target(ref)]
            assert str(new.tree_id) == expected, f"{name}: wrong tree"
            chain = [new, new.parents[0], new.parents[0].parents[0]]
            assert str(chain[2].parent_ids[0]) == tip, f"{name}: not 3 commits on the tip"
            if rep:
                s.add(f"b/{name}", elapsed)


# -- (c) a worktree ready for a new task ---------------------------------------------------------


def finish_task(b: Bench, path: Path, rep: int) -> None:
    """What an agent leaves behind: two commits on its branch, build outputs, a stray file."""
    for number in (1, 2):
        name = b.pick()
        target = path / name
        target.write_bytes(target.read_bytes() + f"# task {rep} edit {number}\n".encode())
        if number == 2:
            (target.parent / f"task_{rep}_new.py").write_text("VALUE = 1\n")
        git(path, "add", "-A")
        git(path, "commit", "-q", "-m", f"task {rep}: part {number}")
    build = path / "build" / "obj"
    build.mkdir(parents=True, exist_ok=True)
    for k in range(40):
        (build / f"unit_{k}.o").write_bytes(os.urandom(2048) if k % 4 == rep % 4 else b"\0" * 2048)
    (path / "build" / f"app-{rep}.bin").write_bytes(b"\x7fELF" + bytes(4096))
    (path / "scratch-notes.txt").write_text("an untracked, not ignored file the agent forgot\n")


def case_c(b: Bench, reps: int, slow: int, s: Samples) -> None:
    pool = WorktreePool(b.daemon, size=2)
    tip = b.main
    pool.warm(1, tip)
    worktree = pool.acquire("bench/c/task-0", start=tip)
    fresh_root = b.path.parent / "fresh-worktrees"
    fresh_root.mkdir()
    quiet_disk()
    for rep in range(1, reps + 2):  # round 1 warms up and is not counted
        finish_task(b, worktree.path, rep)
        for _ in range(3):
            tip, _ = b.change_files(tip, 2, "the integration tip moved")
        start = time.perf_counter()
        pool.release(worktree)
        released = ms_since(start)
        start = time.perf_counter()
        worktree = pool.acquire(f"bench/c/task-{rep}", start=tip)
        acquired = ms_since(start)
        assert git(worktree.path, "rev-parse", "HEAD") == tip
        assert git(worktree.path, "symbolic-ref", "HEAD") == f"refs/heads/bench/c/task-{rep}"
        assert git(worktree.path, "status", "--porcelain") == "", "the pooled worktree is not clean"
        assert (worktree.path / "build" / "obj" / "unit_0.o").exists(), "ignored build files were dropped"
        if rep > 1:
            s.add("c/swarmd acquire", acquired)
            s.add("c/swarmd release", released)
            s.add("c/swarmd release + acquire", released + acquired)
        if rep <= slow + 1:
            fresh = fresh_root / f"wt-{rep}"
            start = time.perf_counter()
            git(b.path, "worktree", "add", "-q", "-b", f"bench/c/fresh-{rep}", str(fresh), tip)
            elapsed = ms_since(start)
            assert git(fresh, "rev-parse", "HEAD") == tip
            if rep > 1:
                s.add("c/git worktree add", elapsed)
            quiet_disk()


# -- (d) one .swarm/ task commit with its compare-and-swap ---------------------------------------


def case_d(b: Bench, base: str, tasks: list[Task], reps: int, s: Samples) -> None:
    methods = ["swarmd", "full index"]
    for name in methods:
        b.set_ref(f"refs/heads/bench/d/{methods.index(name)}", base)
    work = iter(tasks[1:])
    for rep in range(reps + 1):
        for name in rotate(methods, rep):
            branch = f"bench/d/{methods.index(name)}"
            task = next(work)
            path, data = task_path(task.id), dump_task(done(task))
            old = b.repo.branch_tip(branch)
            message = f"task {task.id}: done"
            start = time.perf_counter()
            if name == "swarmd":
                commit_changes(b.daemon, branch, lambda tip: {path: data}, message)
            else:
                raw = b.daemon.raw
                ref = raw.references.get(f"refs/heads/{branch}")
                parent = raw[ref.target].peel(pygit2.Commit)
                index = pygit2.Index()
                index.read_tree(parent.tree)
                index.add(pygit2.IndexEntry(path, raw.create_blob(data), pygit2.enums.FileMode.BLOB))
                tree = index.write_tree(raw)
                new = raw.create_commit(None, SIG, SIG, message, tree, [parent.id])
                ref.set_target(new, message)
            elapsed = ms_since(start)
            new = b.raw[b.repo.branch_tip(branch)]
            assert str(new.parent_ids[0]) == old and new.tree[path].data == data, f"{name}: wrong commit"
            assert str(new.tree_id) == b.expected_tree(old, {path: data}), f"{name}: wrong tree"
            if rep:
                s.add(f"d/{name}", elapsed)


# -- (e) sustained landing throughput from 4 writer processes ------------------------------------


@dataclass(frozen=True)
class Job:
    head: str  # the branch's commit
    fork: str  # the integration tip it started from (the daemon knows it: the tip it handed the agent)
    task: Task  # the task, still running; the landing turns it done
    changed: str  # the one file the branch changed


class Plumbing:
    """Long-lived `git cat-file --batch`, `git mktree --batch` and `git hash-object --stdin-paths`, so the
    CLI route spawns only what git 2.39 cannot keep alive: merge-tree, commit-tree and update-ref."""

    def __init__(self, cwd: Path) -> None:
        self.cwd = cwd

        def start(*args: str) -> subprocess.Popen[bytes]:
            return subprocess.Popen(["git", *args], cwd=cwd, env=ENV, stdin=subprocess.PIPE, stdout=subprocess.PIPE)

        self.cat = start("cat-file", "--batch")
        self.mktree = start("mktree", "--batch")
        self.hasher = start("hash-object", "-w", "--no-filters", "--stdin-paths")
        self.scratch = Path(tempfile.mkstemp(prefix="bench-blob-")[1])

    def _ask(self, proc: subprocess.Popen[bytes], text: bytes) -> bytes:
        assert proc.stdin is not None and proc.stdout is not None
        proc.stdin.write(text)
        proc.stdin.flush()
        return proc.stdout.readline().strip()

    def resolve(self, name: str) -> tuple[str, bytes]:
        """(id, content) of an object named by id, ref or `tree:path`."""
        header = self._ask(self.cat, name.encode() + b"\n").split()
        if header[-1] == b"missing":
            raise KeyError(name)
        assert self.cat.stdout is not None
        body = self.cat.stdout.read(int(header[2]) + 1)[:-1]
        return header[0].decode(), body

    def write_blob(self, data: bytes) -> str:
        self.scratch.write_bytes(data)
        return self._ask(self.hasher, str(self.scratch).encode() + b"\n").decode()

    def write_tree(self, entries: dict[bytes, tuple[bytes, bytes]]) -> str:
        lines = []
        for name, (mode, oid) in entries.items():
            kind = b"tree" if mode == b"40000" else b"commit" if mode == b"160000" else b"blob"
            lines.append(b"%s %s %s\t%s\n" % (mode.rjust(6, b"0"), kind, oid, name))
        return self._ask(self.mktree, b"".join(lines) + b"\n").decode()

    def tree_with_file(self, tree: str, path: str, blob: str) -> str:
        """`tree` with the blob at `path`, rewriting only the trees on that path."""
        parts = path.split("/")
        levels = []
        for depth in range(len(parts)):
            name = tree if depth == 0 else f"{tree}:{'/'.join(parts[:depth])}"
            try:
                levels.append(_parse_tree(self.resolve(name)[1]))
            except KeyError:
                levels.append({})
        oid, mode = blob.encode(), b"100644"
        for depth in range(len(parts) - 1, -1, -1):
            levels[depth][parts[depth].encode()] = (mode, oid)
            oid, mode = self.write_tree(levels[depth]).encode(), b"40000"
        return oid.decode()

    def close(self) -> None:
        for proc in (self.cat, self.mktree, self.hasher):
            assert proc.stdin is not None
            proc.stdin.close()
            proc.wait()
        self.scratch.unlink(missing_ok=True)


def _parse_tree(body: bytes) -> dict[bytes, tuple[bytes, bytes]]:
    entries, at = {}, 0
    while at < len(body):
        space = body.index(b" ", at)
        nul = body.index(b"\0", space)
        entries[body[space + 1:nul]] = (body[at:space], body[nul + 1:nul + 21].hex().encode())
        at = nul + 21
    return entries


def cli_land(cwd: Path, ref: str, job: Job, route: str, plumbing: Plumbing | None, index_env: dict[str, str]) -> int:
    """Land one branch with its task file through the git CLI; returns the number of tries."""
    path, data = task_path(job.task.id), dump_task(done(job.task))
    message = f"land task {job.task.id}"
    blob = plumbing.write_blob(data) if plumbing else git(cwd, "hash-object", "-w", "--stdin", data=data)
    tries = 0
    while True:
        tries += 1
        tip = plumbing.resolve(ref)[0] if plumbing else git(cwd, "rev-parse", ref)
        proc = subprocess.run(["git", "merge-tree", "--write-tree", tip, job.head], cwd=cwd, env=ENV,
                              capture_output=True)
        if proc.returncode != 0:
            raise RuntimeError(f"merge-tree {tip} {job.head}: conflict or error: {proc.stdout!r} {proc.stderr!r}")
        merged = proc.stdout.split(b"\n", 1)[0].decode()
        if plumbing:
            tree = plumbing.tree_with_file(merged, path, blob)
        else:
            git(cwd, "read-tree", merged, env=index_env)
            git(cwd, "update-index", "--add", "--cacheinfo", f"100644,{blob},{path}", env=index_env)
            tree = git(cwd, "write-tree", env=index_env)
        new = git(cwd, "commit-tree", tree, "-p", tip, "-p", job.head, "-m", message)
        proc = subprocess.run(["git", "update-ref", ref, new, tip], cwd=cwd, env=ENV, capture_output=True)
        if proc.returncode == 0:
            return tries
        err = proc.stderr.decode()
        if "but expected" not in err and "File exists" not in err and "lock" not in err:
            raise RuntimeError(f"update-ref failed: {err}")


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


# -- the report ----------------------------------------------------------------------------------


def machine() -> str:
    cpu = "?"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    gitv = git(Path.cwd(), "--version")
    return (f"{os.cpu_count()} cores ({len(os.sched_getaffinity(0))} usable), {cpu}; {platform.system()} "
            f"{platform.release()}; Python {platform.python_version()}; {gitv}; pygit2 {pygit2.__version__}, "
            f"libgit2 {pygit2.LIBGIT2_VERSION}")


def report(s: Samples, landings: int, writers: int) -> list[str]:
    rows = []

    def row(case: str, ours: str, theirs: str | None, target: float | None, extra_ok: bool = True) -> None:
        a, b = s.med(ours), s.med(theirs) if theirs else None
        ratio = b / a if b is not None else None
        met = "" if target is None else ("yes" if ratio is not None and ratio >= target and extra_ok else "NO")
        rows.append((case, f"{a:.2f}", f"{b:.2f}" if b is not None else "-",
                     f"{ratio:.1f}x" if ratio is not None else "-",
                     f">= {target:g}x" if target is not None else "(info)", met))

    row("(a) land 1-file branch vs git merge in a kept worktree", "a/swarmd", "a/git merge in a worktree", 50)
    row("(a) land 1-file branch vs merge-tree + commit-tree + update-ref", "a/swarmd", "a/git merge-tree route", 1)
    row("(a) same, swarmd opening the repository per landing", "a/swarmd, repository opened per landing",
        "a/git merge-tree route", None)
    row("(b) replay 3 commits + ref CAS vs git rebase in a worktree", "b/swarmd", "b/git rebase in a worktree", 20)
    row("(c) pool acquire (reused worktree) vs git worktree add", "c/swarmd acquire", "c/git worktree add", 10)
    row("(c) pool release, off the request path", "c/swarmd release", "c/git worktree add", None)
    row("(c) pool release + acquire, whole cost", "c/swarmd release + acquire", "c/git worktree add", None)
    row("(d) .swarm task commit + CAS vs full pygit2 Index", "d/swarmd", "d/full index", 3)
    no_loss = s.values["e/swarmd/lost"] == [0.0] and s.values["e/cli/lost"] == [0.0]
    rate_ours, rate_theirs = 1000 / s.med("e/swarmd"), 1000 / s.med("e/cli")
    row(f"(e) ms per landing, {landings} landings, {writers} writers "
        f"({rate_ours:.0f} vs {rate_theirs:.0f} landings/s), none lost", "e/swarmd", "e/cli", 5, no_loss)
    widths = [max(len(r[i]) for r in rows + [HEADER]) for i in range(len(HEADER))]
    fmt = lambda r: " | ".join(c.ljust(w) if i == 0 else c.rjust(w) for i, (c, w) in enumerate(zip(r, widths)))  # noqa: E731
    return [fmt(HEADER), "-+-".join("-" * w for w in widths), *[fmt(r) for r in rows]]


HEADER = ("case", "swarmd ms", "baseline ms", "ratio", "target", "met")
TIMED = """what is timed (the git commands run from Python with subprocess, as a Python tool would run them):
  (a) swarmd: land_branch(repo, branch, head, base=<where it started>) on a long-lived Repo: reads the tip, merges, commits, set_target (CAS).
      merge-tree route: merge-tree --write-tree <tip> <head>; commit-tree -p <tip> -p <head>; update-ref <ref> <new> <tip>
      (the tip is handed to it: no rev-parse). worktree route: in a kept worktree, reset -q --hard <tip>;
      merge -q --no-edit <head>; update-ref <ref> HEAD <tip>.
  (b) swarmd: commits_to_replay + replay + set_target (CAS) of the branch. git: rebase -q <tip> in a worktree that has
      the branch checked out (the checkout of the branch is not timed).
  (c) swarmd: WorktreePool.acquire(new branch, start=<tip>) of the worktree a finished task gave back with release
      (2 commits on its branch, 41 ignored build files, 1 stray untracked file; the tip 3 commits further).
      git: worktree add -q -b <branch> <new folder> <tip> (the disk is flushed with sync before each).
  (d) swarmd: commit_changes(repo, branch, build) writing .swarm/tasks/<id>.yaml. Index: pygit2.Index().read_tree(tip
      tree), add the blob, write_tree, create_commit, set_target (CAS).
  (e) each landing: the merge of the branch and its task YAML turned done (dump_task) in one commit, CAS onto one
      branch, lost races retried; land_branch calls its build callback (dump_task) on every try, the CLI route dumps
      once per landing. Each route has its own branch and 4 writer processes that live through the whole case; the
      branches are landed in 5 rounds, the routes taking turns round by round (never at the same time), so a change
      in the machine's load falls on both. Wall time = the sum of the rounds, from the first writer's start to the
      last writer's end. The repository has gc.auto=0: no git command packs objects during a case."""


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
    print(f"load average at the start: {' '.join(f'{x:.2f}' for x in os.getloadavg())} (1, 5, 15 min)")
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
              f"load average at the end: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    finally:
        if args.keep:
            print(f"kept {work}")
        else:
            shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
