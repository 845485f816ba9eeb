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
import json
import os
import platform
import random
import re
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
FILES, FOLDERS, COMMITS = 500, 40, 20
AGENT_TIMEOUT_S = 600
RUN_TIMEOUT_S = 600  # one daemon child or one flat run; the whole benchmark should take minutes
STARTED = re.compile(r"^\d\d:\d\d:\d\d worker (\S+) started, attempt (\d+)$")
LANDED = re.compile(r"^\d\d:\d\d:\d\d landed (\S+) at ([0-9a-f]+)")
EXITED = re.compile(r"^\d\d:\d\d:\d\d worker (\S+) exited with status (-?\d+) after")

IDENTITY = {
    "GIT_AUTHOR_NAME": "Bench Worker", "GIT_AUTHOR_EMAIL": "worker@example.com",
    "GIT_COMMITTER_NAME": "Bench Worker", "GIT_COMMITTER_EMAIL": "worker@example.com",
}

# The one agent script every design runs. $EPOCHREALTIME needs no fork; `times` (in this shell, not a
# subshell) gives the CPU of the script and of what it ran, so the daemon's own git commands can be told
# apart from the agents' in the daemon's RUSAGE_CHILDREN.
WORKER_SH = r"""#!/usr/bin/env bash
# swarmd benchmark worker: sleep, change one file, commit, exit 0.
set -e
export LC_ALL=C
start=$EPOCHREALTIME
export GIT_AUTHOR_NAME="Bench Worker" GIT_AUTHOR_EMAIL=worker@example.com
export GIT_COMMITTER_NAME="Bench Worker" GIT_COMMITTER_EMAIL=worker@example.com
sleep "$BENCH_SLEEP"
mkdir -p work
printf 'task %s, attempt %s\n' "$SWARM_TASK_ID" "${SWARM_ATTEMPT:-1}" > "work/$SWARM_TASK_ID.txt"
git add "work/$SWARM_TASK_ID.txt"
git commit -q --no-verify -m "work on task $SWARM_TASK_ID"
end=$EPOCHREALTIME
out="$BENCH_TIMES/$SWARM_TASK_ID.${SWARM_ATTEMPT:-1}"
{ echo "$SWARM_TASK_ID ${SWARM_ATTEMPT:-1} $start $end"; times; } > "$out.tmp"
mv "$out.tmp" "$out"
exit 0
"""
PLANNER_SH = """#!/usr/bin/env bash
# swarmd benchmark root planner: the tasks are already on the integration branch; add nothing.
exit 0
"""
JUDGE_SH = """#!/usr/bin/env bash
# swarmd benchmark judge: one cycle is the whole run.
printf 'verdict: stop\\nsummary: benchmark cycle done\\n' > "$SWARM_RESULT_FILE"
exit 0
"""


# -- what one run measured ---------------------------------------------------------------------------


@dataclass
class Worker:
    task: str
    start: float  # the script's own stamps (time.time scale)
    end: float
    cpu: float  # the script's CPU, its children included
    launched: float | None = None  # the daemon's "worker N started" line (flat: the claim)
    exited: float | None = None  # the daemon's "worker N exited" line: when the loop saw the exit
    landed: float | None = None  # "landed N at ..." (flat: the merge done, lock released)


@dataclass
class Run:
    design: str  # "warm", "cold", "flat"
    n: int
    workers: dict[str, Worker] = field(default_factory=dict)
    problems: list[str] = field(default_factory=list)
    cpu_s: float | None = None  # the daemon's own CPU during Daemon.run
    startup_cpu_s: float | None = None  # the daemon child's CPU before Daemon.run (imports, setup)
    children_cpu_s: float | None = None  # the daemon's children: agents and git commands
    maxrss_mb: float | None = None
    run_s: float | None = None  # Daemon.run from call to return
    lines: list[tuple[float, str]] = field(default_factory=list)
    lock_wait_s: list[float] = field(default_factory=list)  # flat: time spent waiting for the lock
    lock_hold_s: list[float] = field(default_factory=list)  # flat: merge + YAML under the lock
    profile: str | None = None
    setup_s: float = 0.0

    @property
    def task_seconds(self) -> float:
        return sum(w.end - w.start for w in self.workers.values())

    @property
    def first_launch(self) -> float:
        return min(min(w.launched or w.start, w.start) for w in self.workers.values())

    @property
    def last_landing(self) -> float:
        return max(w.landed or w.end for w in self.workers.values())

    @property
    def wall(self) -> float:
        return self.last_landing - self.first_launch

    @property
    def parallelism(self) -> float:
        return self.task_seconds / self.wall

    @property
    def ok(self) -> bool:
        return not self.problems and len(self.workers) == self.n and all(w.landed for w in self.workers.values())

    def agents_cpu(self) -> float:
        return sum(w.cpu for w in self.workers.values())


def read_worker_times(folder: Path) -> dict[str, Worker]:
    """The worker scripts' own records: `<id> <attempt> <start> <end>` and bash's `times` lines."""
    found: dict[str, Worker] = {}
    for path in sorted(folder.iterdir()):
        if path.name.endswith(".tmp"):
            continue
        lines = path.read_text().splitlines()
        task, _attempt, start, end = lines[0].split()
        cpu = 0.0
        for line in lines[1:]:  # "0m0.004s 0m0.001s": shell user/sys, then its children's
            for part in line.split():
                minutes, _, seconds = part.rstrip("s").partition("m")
                cpu += int(minutes) * 60 + float(seconds)
        found[task] = Worker(task, float(start), float(end), cpu)  # a later attempt replaces an earlier one
    return found


# -- setting up a repository --------------------------------------------------------------------------


def write_scripts(folder: Path) -> dict[str, Path]:
    folder.mkdir(parents=True, exist_ok=True)
    scripts = {}
    for name, text in (("worker", WORKER_SH), ("planner", PLANNER_SH), ("judge", JUDGE_SH)):
        path = folder / f"{name}.sh"
        path.write_text(text)
        path.chmod(0o755)
        scripts[name] = path
    return scripts


def make_repo(path: Path) -> None:
    sys.path.insert(0, str(HERE))
    from genrepo import generate

    generate(path, files=FILES, folders=FOLDERS, commits=COMMITS, seed=1)


def pool_size_of(config: Any, workers: int) -> int:
    """`Config.pool_size`: a property in older trees, a method taking the workers' limit in newer ones."""
    size = config.pool_size
    return size(workers) if callable(size) else size


def setup_swarm(path: Path, n: int, scripts: dict[str, Path], warm: bool) -> None:
    """A repository set up for swarmd: init, scripted agents, N work tasks committed on the integration
    branch (as a root planner would), and with `warm` a full worktree pool."""
    import yaml

    from swarmd.config import load_config
    from swarmd.git.landing import commit_changes
    from swarmd.git.pool import WorktreePool
    from swarmd.git.repo import Repo
    from swarmd.init import init
    from swarmd.store import dump_task, task_path
    from swarmd.tasks import Kind, Task

    make_repo(path)
    init(path, goal="# Goal\n\nBenchmark: every work task writes work/<id>.txt.\n")
    agents = {role: {"command": ["bash", str(scripts[role])], "timeout": AGENT_TIMEOUT_S}
              for role in ("planner", "worker", "judge")}
    settings = {"limits": {"planners": 2, "workers": n}, "agents": agents}
    (path / ".swarm/config.yaml").write_text(yaml.safe_dump(settings))
    repo, config = Repo.discover(path), load_config(path)

    def build(tip: str) -> dict[str, bytes | None]:
        return {
            task_path(str(i)): dump_task(Task(
                id=str(i), title=f"Write work/{i}.txt", kind=Kind.WORK, parent=None,
                description=f"Write work/{i}.txt and commit it.", acceptance=f"work/{i}.txt exists.",
            ))
            for i in range(1, n + 1)
        }

    landed = commit_changes(repo, config.integration.branch, build, f"plan root: {n} work tasks")
    assert landed.commit, "the tasks were not committed"
    if warm:
        size = pool_size_of(config, n)
        WorktreePool(repo, size, keep_ignored=config.pool.keep_ignored).warm(size, landed.commit)


def setup_flat(path: Path, n: int) -> None:
    """The flat design's shared checkout (the repository's own worktree on `main`), one worktree per agent
    made ahead of time, and the one shared task file."""
    import yaml

    make_repo(path)
    for i in range(1, n + 1):
        git(path, "worktree", "add", "--detach", "--quiet", str(path.parent / "agents" / f"wt-{i}"), "main")
    tasks = [{"id": str(i), "title": f"Write work/{i}.txt", "status": "todo", "agent": None} for i in range(1, n + 1)]
    (path.parent / "tasks.yaml").write_text(yaml.safe_dump({"tasks": tasks}, sort_keys=False))


def git(cwd: Path, *args: str, env: dict[str, str] | None = None) -> str:
    base = {k: v for k, v in os.environ.items() if not k.startswith("GIT_")}
    proc = subprocess.run(["git", *args], cwd=cwd, env={**base, **(env or {})}, capture_output=True, text=True)
    if proc.returncode != 0:
        raise RuntimeError(f"git {' '.join(args)} in {cwd} exited {proc.returncode}: {proc.stderr.strip()}")
    return proc.stdout.strip()


# -- swarmd: the daemon in a child process ----------------------------------------------------------------


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
    except BaseException as exc:  # report it with what was measured so far
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


def run_swarm(work: Path, n: int, warm: bool, sleep: float, scripts: dict[str, Path], profile: bool,
              verbose: bool) -> Run:
    design = "warm" if warm else "cold"
    folder = work / f"swarmd-{design}-{n}"
    times = folder / "times"
    times.mkdir(parents=True)
    t = time.perf_counter()
    setup_swarm(folder / "repo", n, scripts, warm)
    sync_disk()
    run = Run(design, n, setup_s=time.perf_counter() - t)
    out = folder / "report.json"
    argv = [sys.executable, str(Path(__file__).resolve()), "--child", str(folder / "repo"), "--workers", str(n),
            "--out", str(out)]
    if profile:
        argv += ["--profile-out", str(folder / "daemon.prof")]
    if verbose:
        argv.append("--verbose")
    env = {**os.environ, "BENCH_SLEEP": f"{sleep:g}", "BENCH_TIMES": str(times)}
    env = {k: v for k, v in env.items() if not k.startswith("GIT_")}
    with open(folder / "child.log", "wb") as log:
        try:
            code = subprocess.run(argv, env=env, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                  timeout=RUN_TIMEOUT_S).returncode
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


# (file, function, what it is) for the breakdown of the loop's time under --profile
BREAKDOWN = (
    ("loop.py", "_start", "launching a batch of agents (all of it)"),
    ("pool.py", "acquire_many", "  pool.acquire_many: the loop's share (git moves them in threads)"),
    ("pool.py", "_claim", "    _claim: a slot, under the pool lock"),
    ("pool.py", "_hand_out", "    _hand_out: the branch and HEAD"),
    ("prompts.py", "render", "  prompts.render (jinja, each template compiled once)"),
    ("runner.py", "start", "  Runner.start (Popen and the agent record)"),
    ("bookkeeping.py", "start", "  Ledger.start (one commit: every task running)"),
    ("pool.py", "acquire", "pool.acquire: one worktree on the loop (root planner, judge)"),
    ("pool.py", "_move", "  _move: git read-tree -m -u to the tip"),
    ("pool.py", "_create", "  _create: git worktree add (cold)"),
    ("repo.py", "checked_out_branches", "Repo.checked_out_branches (every worktree's HEAD)"),
    ("loop.py", "_handle", "handling an event (an agent exited)"),
    ("integrate.py", "land", "  Integrator.land (in-memory merge + compare-and-swap)"),
    ("pool.py", "give_back", "  pool.give_back (the release itself runs on the pool's thread)"),
    ("repo.py", "delete_branch", "  Repo.delete_branch (the landed branch)"),
    ("store.py", "read_tree", "store.read_tree (once per burst of events)"),
    ("bookkeeping.py", "cycle_at", "Ledger.cycle_at (parsed once per blob)"),
    ("store.py", "parse_task", "parsing a task file, from any caller (libyaml + pydantic)"),
    ("cli.py", "run_git", "every git command the loop waited for"),
)


def profile_breakdown(path: Path) -> str:
    """Calls, total seconds and ms per call of the loop's main steps, from the cProfile data."""
    import pstats

    stats = pstats.Stats(str(path)).stats  # type: ignore[attr-defined]
    total = max(ct for (_, _, name), (_, _, _, ct, _) in stats.items() if name == "run")
    out = [f"  {'step':68s} {'calls':>6s} {'total s':>8s} {'ms/call':>8s} {'of run':>7s}"]
    for file, function, label in BREAKDOWN:
        calls, seconds = 0, 0.0
        for (filename, _, name), (_, nc, _, ct, _) in stats.items():
            if name == function and filename.endswith("/" + file):
                calls, seconds = calls + nc, seconds + ct
        if calls:
            out.append(f"  {label:68s} {calls:6d} {seconds:8.2f} {1000 * seconds / calls:8.1f} {seconds / total:7.0%}")
    return "\n".join(out)


def profile_text(path: Path, limit: int = 30) -> str:
    import io
    import pstats

    buffer = io.StringIO()
    stats = pstats.Stats(str(path), stream=buffer)
    stats.strip_dirs().sort_stats("cumulative").print_stats(limit)
    text = buffer.getvalue()
    # keep the table, drop pstats' preamble about the file
    start = text.find("   ncalls")
    header = [line for line in text.splitlines() if "function calls" in line]
    return "\n".join(header + [text[start:].rstrip()]) if start >= 0 else text


# -- the flat design ----------------------------------------------------------------------------------


def flat_agent_main(args: argparse.Namespace) -> int:
    """One flat agent: claim a task from the shared YAML under the lock, work in its own worktree, merge
    into the shared checkout and mark the task done under the same lock; until no task is left."""
    import yaml
    from filelock import FileLock

    loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
    dumper = getattr(yaml, "CSafeDumper", yaml.SafeDumper)
    base = Path(args.flat_agent)
    me = args.agent
    shared, tasks_file = base / "repo", base / "tasks.yaml"
    mine = base / "agents" / f"wt-{me}"
    lock = FileLock(str(tasks_file) + ".lock", poll_interval=args.poll)
    env = {k: v for k, v in os.environ.items() if not k.startswith("GIT_")} | IDENTITY
    records: list[dict[str, Any]] = []

    def rewrite(change: Any) -> Any:
        data = yaml.load(tasks_file.read_text(), Loader=loader)
        found = change(data["tasks"])
        tasks_file.write_text(yaml.dump(data, Dumper=dumper, sort_keys=False))
        return found

    def claim(tasks: list[dict[str, Any]]) -> str | None:
        for task in tasks:
            if task["status"] == "todo":
                task["status"], task["agent"] = "running", me
                return str(task["id"])
        return None

    def done(task_id: str) -> Any:
        def change(tasks: list[dict[str, Any]]) -> None:
            for task in tasks:
                if str(task["id"]) == task_id:
                    task["status"] = "done"
        return change

    def run_git(cwd: Path, *argv: str) -> str:
        proc = subprocess.run(["git", *argv], cwd=cwd, env=env, capture_output=True, text=True)
        if proc.returncode != 0:
            raise RuntimeError(f"git {' '.join(argv)} in {cwd}: {proc.stderr.strip()}")
        return proc.stdout.strip()

    print("ready", flush=True)
    sys.stdin.readline()  # every agent is up before the first claim: startup is not what is measured
    # Agents that began in the same instant would poll the lock in lockstep (all wake, one wins, all sleep
    # again: one claim per poll interval); real agents do not start together, so spread their phases.
    time.sleep(random.uniform(0, args.poll))
    while True:
        asked = time.time()
        with lock:
            got = time.time()
            task_id = rewrite(claim)
            released = time.time()
        if task_id is None:
            break
        record: dict[str, Any] = {"task": task_id, "claim_wait": got - asked, "claim_hold": released - got,
                                  "claimed": released}
        run_git(mine, "checkout", "--quiet", "--detach", "main")  # start from the shared tip
        agent_env = {**env, "SWARM_ROLE": "worker", "SWARM_TASK_ID": task_id, "SWARM_ATTEMPT": "1"}
        code = subprocess.run(["bash", args.script], cwd=mine, env=agent_env, stdin=subprocess.DEVNULL).returncode
        head = run_git(mine, "rev-parse", "HEAD")
        asked = time.time()
        with lock:
            got = time.time()
            try:
                run_git(shared, "merge", "--quiet", "--no-ff", "--no-edit", "-m", f"merge task {task_id}", head)
                merged = True
            except RuntimeError as exc:
                print(exc, file=sys.stderr)
                subprocess.run(["git", "merge", "--abort"], cwd=shared, env=env, capture_output=True)
                merged = False
            if merged and code == 0:
                rewrite(done(task_id))
            released = time.time()
        record.update(merge_wait=got - asked, merge_hold=released - got, merged=released if merged else None,
                      exit=code)
        records.append(record)
    Path(args.out).write_text(json.dumps(records))
    return 0


def run_flat(work: Path, n: int, sleep: float, scripts: dict[str, Path], poll: float) -> Run:
    import yaml

    folder = work / f"flat-{n}"
    times = folder / "times"
    times.mkdir(parents=True)
    t = time.perf_counter()
    setup_flat(folder / "repo", n)
    sync_disk()
    run = Run("flat", n, setup_s=time.perf_counter() - t)
    env = {k: v for k, v in os.environ.items() if not k.startswith("GIT_")}
    env |= {"BENCH_SLEEP": f"{sleep:g}", "BENCH_TIMES": str(times)}
    procs = []
    for i in range(1, n + 1):
        argv = [sys.executable, str(Path(__file__).resolve()), "--flat-agent", str(folder), "--agent", str(i),
                "--script", str(scripts["worker"]), "--out", str(folder / f"agent-{i}.json"), "--poll", f"{poll:g}"]
        procs.append(subprocess.Popen(argv, env=env, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True))
    for proc in procs:
        assert proc.stdout is not None
        if proc.stdout.readline().strip() != "ready":
            run.problems.append(f"flat agent {proc.pid} did not start")
    for proc in procs:  # go
        assert proc.stdin is not None
        proc.stdin.write("go\n")
        proc.stdin.close()
    deadline = time.monotonic() + RUN_TIMEOUT_S
    for proc in procs:
        try:
            code = proc.wait(timeout=max(1.0, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            proc.kill()
            code = proc.wait()
        if code != 0:
            run.problems.append(f"flat agent {proc.pid} exited {code}")
    run.workers = read_worker_times(times)
    for i in range(1, n + 1):
        path = folder / f"agent-{i}.json"
        if not path.exists():
            continue
        for record in json.loads(path.read_text()):
            worker = run.workers.get(record["task"])
            if worker is not None:
                worker.launched, worker.landed = record["claimed"], record["merged"]
            run.lock_wait_s += [record["claim_wait"], record["merge_wait"]]
            run.lock_hold_s.append(record["merge_hold"])
    data = yaml.safe_load((folder / "tasks.yaml").read_text())
    not_done = [t["id"] for t in data["tasks"] if t["status"] != "done"]
    if not_done:
        run.problems.append(f"tasks not done in tasks.yaml: {', '.join(map(str, not_done))}")
    files = git(folder / "repo", "ls-tree", "--name-only", "main:work").split()
    if len(files) != n:
        run.problems.append(f"{len(files)} of {n} work files on main")
    return run


# -- reporting -------------------------------------------------------------------------------------------


def cpu_stall() -> float | None:
    """Microseconds some task waited for a CPU since boot (/proc/pressure/cpu, `some` line), or None."""
    try:
        line = Path("/proc/pressure/cpu").read_text().splitlines()[0]
    except (OSError, IndexError):
        return None
    return float(line.rpartition("total=")[2])


def wait_quiet(limit: float) -> float:
    """Wait (at most `limit` seconds) until nothing waited for a CPU more than 10% of the last 2 s; return the
    share of time something waited over the last 2 s."""
    deadline = time.monotonic() + limit
    while True:
        before, t = cpu_stall(), time.monotonic()
        time.sleep(2.0)
        after = cpu_stall()
        if before is None or after is None:
            return 0.0
        share = (after - before) / 1e6 / (time.monotonic() - t)
        if share < 0.10 or time.monotonic() >= deadline:
            return share


SYNC = True  # --no-sync turns it off


def sync_disk() -> None:
    """Write what the setup wrote to disk before the run, as it would be for a pool that has existed a while
    (the kernel writes dirty pages back within about 30 s), and so the run does not pay for the writeback.

    On this machine that matters beyond the writeback: the root filesystem is ext4 mounted with `discard`,
    so removing a file whose blocks are on disk waits for a discard (one blocking wait per file), while
    removing one still only in the page cache is free. `--no-sync` measures the kinder case.
    """
    if SYNC:
        os.sync()
        time.sleep(0.3)


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


def fmt_par(run: Run | None) -> str:
    if run is None:
        return "-"
    if not run.workers:
        return "failed"
    text = f"{run.parallelism:5.1f} = {run.parallelism / run.n:.2f} N"
    return text + ("" if run.ok else " (!)")


def cell(runs: dict[tuple[str, int], Run], design: str, n: int, what: str) -> str:
    run = runs.get((design, n))
    if run is None or not run.workers:
        return "-"
    w = list(run.workers.values())
    if what == "par":
        return fmt_par(run)
    if what == "wall":
        return f"{run.wall:.2f} s"
    if what == "ideal":
        return f"{statistics.mean(x.end - x.start for x in w):.2f} s"
    if what == "launch_spread":
        launched = [x.launched for x in w if x.launched]
        return f"{max(launched) - min(launched):.2f} s" if launched else "-"
    if what == "start_lag":  # launch line to the script's first instruction
        lags = [x.start - x.launched for x in w if x.launched]
        return f"{1000 * statistics.median(lags):.0f} / {1000 * max(lags):.0f} ms" if lags else "-"
    if what == "seen_lag":  # the script's exit to the loop's "exited" line
        lags = [x.exited - x.end for x in w if x.exited]
        return f"{1000 * statistics.median(lags):.0f} / {1000 * max(lags):.0f} ms" if lags else "-"
    if what == "land_lag":  # the script's exit to its landing
        lags = [x.landed - x.end for x in w if x.landed]
        return f"{1000 * statistics.median(lags):.0f} / {1000 * max(lags):.0f} ms" if lags else "-"
    if what == "land_spread":
        landed = [x.landed for x in w if x.landed]
        return f"{max(landed) - min(landed):.2f} s" if landed else "-"
    if what == "cpu" and run.cpu_s is not None:
        return f"{1000 * run.cpu_s / run.n:.0f} ms"
    if what == "gitcpu" and run.children_cpu_s is not None:
        return f"{1000 * max(0.0, run.children_cpu_s - run.agents_cpu()) / run.n:.0f} ms"
    if what == "startup" and run.startup_cpu_s is not None:
        return f"{run.startup_cpu_s:.2f} s"
    if what == "rss" and run.maxrss_mb is not None:
        return f"{run.maxrss_mb:.0f} MB"
    if what == "lockwait" and run.lock_wait_s:
        return f"{sum(run.lock_wait_s) / run.n * 1000:.0f} ms"
    if what == "lockhold" and run.lock_hold_s:
        return f"{1000 * statistics.median(run.lock_hold_s):.0f} / {1000 * max(run.lock_hold_s):.0f} ms"
    return "-"


def median_run(found: list[Run]) -> Run:
    """The run with the median parallelism; a failed run ranks lowest (with two runs: the lower one)."""
    ranked = sorted(found, key=lambda run: run.parallelism if run.ok else -1.0)
    return ranked[(len(ranked) - 1) // 2]


def parallelism_range(found: list[Run]) -> str:
    values = [run.parallelism / run.n for run in found if run.ok]
    failed = len(found) - len(values)
    text = f"{min(values):.2f}-{max(values):.2f}" if values else ""
    return text + (f", {failed} failed" if failed else "")


def table(runs: dict[tuple[str, int], Run], sizes: list[int], spread: dict[tuple[str, int], str]) -> list[str]:
    width = 26 if spread else 20
    out = [f"{'':44s}" + "".join(f"{'N = ' + str(n):>{width}s}" for n in sizes)]

    def row(label: str, design: str, what: str) -> None:
        def text(n: int) -> str:
            found = cell(runs, design, n, what)
            return found + (f" ({spread[(design, n)]})" if what == "par" and (design, n) in spread else "")

        out.append(f"{label:44s}" + "".join(f"{text(n):>{width}s}" for n in sizes))

    out.append("effective parallelism (task s / wall s)")
    row("  swarmd, warm pool", "warm", "par")
    row("  swarmd, cold pool", "cold", "par")
    row("  flat design (filelock + shared checkout)", "flat", "par")
    out.append("wall s, first launch to last landing")
    row("  swarmd, warm pool", "warm", "wall")
    row("  swarmd, cold pool", "cold", "wall")
    row("  flat design", "flat", "wall")
    row("  (one worker's own seconds, mean)", "warm", "ideal")
    out.append("daemon CPU per task (its process, during run)")
    row("  warm pool", "warm", "cpu")
    row("  cold pool", "cold", "cpu")
    out.append("daemon's git commands' CPU per task")
    row("  warm pool", "warm", "gitcpu")
    row("  cold pool", "cold", "gitcpu")
    out.append("daemon peak memory (ru_maxrss)")
    row("  warm pool", "warm", "rss")
    row("  cold pool", "cold", "rss")
    out.append("where the wall time went (median / max)")
    row("  warm: first to last launch", "warm", "launch_spread")
    row("  cold: first to last launch", "cold", "launch_spread")
    row("  flat: first to last claim", "flat", "launch_spread")
    row("  warm: launch line to script start", "warm", "start_lag")
    row("  cold: launch line to script start", "cold", "start_lag")
    row("  warm: script exit to the loop handling it", "warm", "seen_lag")
    row("  cold: script exit to the loop handling it", "cold", "seen_lag")
    row("  warm: script exit to landed", "warm", "land_lag")
    row("  cold: script exit to landed", "cold", "land_lag")
    row("  flat: script exit to merged", "flat", "land_lag")
    row("  warm: first to last landing", "warm", "land_spread")
    row("  cold: first to last landing", "cold", "land_spread")
    row("  flat: first to last merge", "flat", "land_spread")
    row("  flat: lock waits per task (sum)", "flat", "lockwait")
    row("  flat: lock held per merge", "flat", "lockhold")
    row("  daemon startup CPU (imports), warm", "warm", "startup")
    return out


def targets(runs: dict[tuple[str, int], Run], every: dict[tuple[str, int], list[Run]]) -> list[tuple[str, bool | None, str]]:
    """(target, met or None when not run, the figures). "Ahead" must hold for every run: swarmd's worst run
    above the flat design's best, so that noise between runs is not taken for a lead."""
    found: list[tuple[str, bool | None, str]] = []

    def par(design: str, n: int) -> float | None:
        run = runs.get((design, n))
        return run.parallelism / n if run and run.workers and run.ok else None

    for n, goal in ((10, 0.9), (100, 0.8)):
        value = par("warm", n)
        found.append((f"warm pool at N = {n}: at least {goal} N", None if value is None else value >= goal,
                      "not run" if value is None else f"{value:.2f} N"))
    for n in (50, 100):
        ours, flat = par("warm", n), par("flat", n)
        if ours is None or flat is None:
            found.append((f"swarmd (warm) ahead of the flat design at N = {n}", None, "not run"))
            continue
        worst = min(r.parallelism / n if r.ok else 0.0 for r in every[("warm", n)])
        best = max(r.parallelism / n for r in every[("flat", n)] if r.ok)
        text = f"{ours:.2f} N against {flat:.2f} N (medians)"
        if len(every[("warm", n)]) > 1 or len(every[("flat", n)]) > 1:
            text += f"; swarmd's worst run {worst:.2f} N, the flat design's best {best:.2f} N"
        found.append((f"swarmd (warm) ahead of the flat design at N = {n}, in every run", worst > best, text))
    run = runs.get(("warm", 100))
    if run is None or run.maxrss_mb is None:
        found.append(("daemon memory under 150 MB at N = 100", None, "not run"))
    else:
        found.append(("daemon memory under 150 MB at N = 100", run.maxrss_mb < 150, f"{run.maxrss_mb:.0f} MB"))
    return found


def machine() -> str:
    cpu = "?"
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            cpu = line.split(":", 1)[1].strip()
            break
    gitv = subprocess.run(["git", "--version"], capture_output=True, text=True).stdout.strip()
    return f"{len(os.sched_getaffinity(0))} usable cores, {cpu}; Python {platform.python_version()}; {gitv}"


def main() -> int:
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
    # internal entry points
    parser.add_argument("--child", help=argparse.SUPPRESS)
    parser.add_argument("--flat-agent", help=argparse.SUPPRESS)
    parser.add_argument("--agent", help=argparse.SUPPRESS)
    parser.add_argument("--script", help=argparse.SUPPRESS)
    parser.add_argument("--workers", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--out", help=argparse.SUPPRESS)
    parser.add_argument("--profile-out", help=argparse.SUPPRESS)
    parser.add_argument("--poll", type=float, default=0.05, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        return child_main(args)
    if args.flat_agent:
        return flat_agent_main(args)

    sizes = [int(x) for x in (args.sizes or ("5,10" if args.quick else "10,50,100")).split(",")]
    sleep = args.sleep if args.sleep is not None else (1.0 if args.quick else 5.0)
    designs = [d.strip() for d in args.designs.split(",") if d.strip()]
    repeat = args.repeat or (1 if args.quick else 3)
    global SYNC
    SYNC = not args.no_sync
    command = (f"python benchmarks/swarm.py --sizes {','.join(map(str, sizes))} --sleep {sleep:g} --repeat {repeat}"
               + (" --profile" if args.profile else "") + (" --no-sync" if args.no_sync else ""))
    print(f"command: {command}")
    print(f"machine: {machine()}")
    print(f"load average at the start: {' '.join(f'{x:.2f}' for x in os.getloadavg())} (1, 5, 15 min)")
    print(f"repository: {FILES} files in {FOLDERS} folders; workers: bash, sleep {sleep:g} s, write one file, "
          "git add + commit, exit 0")
    print("before each run the setup is written to disk (os.sync), as for a pool that has existed a while" if SYNC
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
        for n in sizes:
            for rep in range(repeat):  # the designs take turns, so a burst of load elsewhere hits them alike
                for design in designs:
                    quiet = wait_quiet(args.wait_quiet) if args.wait_quiet else None
                    t, stall = time.perf_counter(), cpu_stall()
                    if design == "flat":
                        run = run_flat(work / f"r{rep + 1}", n, sleep, scripts, args.flat_poll)
                    else:
                        run = run_swarm(work / f"r{rep + 1}", n, design == "warm", sleep, scripts, args.profile,
                                        args.verbose)
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
        if args.profile:
            for (design, n), run in runs.items():
                if run.profile:
                    print(f"\nprofile of the daemon (cProfile), {design} pool, N = {n}; the parallelism of this "
                          f"profiled run was {fmt_par(run).strip()}")
                    print(run.profile)
        print(f"\ntotal {time.perf_counter() - started:.0f} s; load average at the end: "
              f"{' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    finally:
        if args.keep:
            print(f"kept {work}")
        else:
            shutil.rmtree(work, ignore_errors=True)
    return 0 if all(run.ok for found in every.values() for run in found) else 1


if __name__ == "__main__":
    sys.exit(main())
