"""What one run measured: every worker's own stamps and CPU, what the daemon (or a flat agent) logged
about it, and the figures derived from them. Each design fills a `Run`; the report reads only these."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path


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
