"""What the swarm spent, by attempt, task, cycle, role and in all, against its budgets.

Every metered answer is appended as one JSON line to `.git/swarm/spend.jsonl` as it ends, and the
totals are rebuilt from that file at start, so a budget holds across restarts and kill -9 (a torn last
line is skipped). `spend.json` beside it is a summary for `swarmd status`, rewritten at most once a second.
Everything here is called from the gateway's thread and the daemon's: one lock guards it.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from swarmd.files import write_atomic
from swarmd.gateway.apis import Counts

log = logging.getLogger(__name__)

SPEND_LOG = "spend.jsonl"
SUMMARY = "spend.json"
SUMMARY_EVERY_S = 1.0


@dataclass(frozen=True)
class Badge:
    """Who an agent token belongs to. `task` is the budget's task: the task id, or for the root planner
    and the judge `<role>-root@<cycle>`, each of which is a task of its cycle alone."""

    token: str
    role: str
    task: str
    cycle: int
    attempt: int


@dataclass(frozen=True)
class Limit:
    max_usd: float | None = None
    max_tokens: int | None = None

    def spent(self, counts: Counts) -> str | None:
        """Why this limit is spent, or None. A limit in dollars cannot hold once tokens nobody could
        price were spent: that counts as spent too, and says what to set."""
        if self.max_usd is not None and (counts.cost_usd or 0.0) >= self.max_usd:
            return f"${counts.cost_usd or 0:.4g} of ${self.max_usd:g}"
        if self.max_usd is not None and counts.unpriced_tokens > 0:
            return (f"{counts.unpriced_tokens:,} tokens of a model with no known price, so ${self.max_usd:g} cannot be "
                    "held; set agents.<role>.price")
        if self.max_tokens is not None and counts.tokens >= self.max_tokens:
            return f"{counts.tokens:,} of {self.max_tokens:,} tokens"
        return None


@dataclass(frozen=True)
class Budgets:
    task: Limit = Limit()
    cycle: Limit = Limit()
    run: Limit = Limit()


@dataclass
class Totals:
    run: Counts = field(default_factory=Counts)
    cycles: dict[int, Counts] = field(default_factory=lambda: defaultdict(Counts))
    tasks: dict[str, Counts] = field(default_factory=lambda: defaultdict(Counts))
    roles: dict[str, Counts] = field(default_factory=lambda: defaultdict(Counts))
    attempts: dict[tuple[str, int, int], Counts] = field(default_factory=lambda: defaultdict(Counts))

    def add(self, role: str, task: str, cycle: int, attempt: int, counts: Counts) -> None:
        for total in (self.run, self.cycles[cycle], self.tasks[task], self.roles[role],
                      self.attempts[(task, cycle, attempt)]):
            total.add(counts)

    def cycle(self, number: int) -> Counts:
        return self.cycles.get(number) or Counts()

    def task(self, key: str) -> Counts:
        return self.tasks.get(key) or Counts()


class Spend:
    def __init__(self, folder: Path, budgets: Budgets) -> None:
        self.folder = folder
        self.budgets = budgets
        self.lock = threading.Lock()
        self.totals = Totals()
        # What calls in flight may spend, estimated from their requests: counted against the budgets until
        # each is charged, so a hundred calls at once cannot each pass a check the others will break.
        self.inflight = Totals()
        self.dirty = False  # spent since spend.json was last written
        self._load()
        self._log: Any = None  # spend.jsonl, opened at the first line and kept open

    # -- budgets ----------------------------------------------------------------------------------

    def admit(self, badge: Badge, estimate: Counts) -> tuple[str, str] | None:
        """A call `badge` is about to make, which may spend about `estimate`: which budget it may not
        spend more of (`task`, `cycle` or `run`) and why; or None, and the estimate is held in flight
        until `settle`. The judge answers to the run's budget alone: it closes the cycle once the cycle's
        is spent, and is no task's."""
        with self.lock:
            if why := self.budgets.run.spent(self.totals.run.plus(self.inflight.run)):
                return "run", f"the run's budget is spent ({why}; budget.run)"
            if badge.role != "judge":
                if why := self.budgets.cycle.spent(self.totals.cycle(badge.cycle).plus(self.inflight.cycle(badge.cycle))):
                    return "cycle", f"cycle {badge.cycle}'s budget is spent ({why}; budget.cycle)"
                if why := self.budgets.task.spent(self.totals.task(badge.task).plus(self.inflight.task(badge.task))):
                    return "task", f"the budget of {_task_name(badge.task)} is spent ({why}; budget.task)"
            self.inflight.add(badge.role, badge.task, badge.cycle, badge.attempt, estimate)
        return None

    def settle(self, badge: Badge, estimate: Counts) -> None:
        """The call `admit` let through has ended (charged with `add`, or not): its estimate is let go."""
        with self.lock:
            self.inflight.add(badge.role, badge.task, badge.cycle, badge.attempt, estimate.negated())

    def run_spent(self) -> str | None:
        with self.lock:
            return self.budgets.run.spent(self.totals.run)

    def cycle_spent(self, cycle: int) -> str | None:
        with self.lock:
            return self.budgets.cycle.spent(self.totals.cycle(cycle))

    def of_task(self, task: str) -> Counts | None:
        with self.lock:
            counts = self.totals.tasks.get(task)
            return None if counts is None else Counts(**vars(counts))

    # -- what was spent ---------------------------------------------------------------------------

    def add(self, badge: Badge, counts: Counts, api: str, model: str | None, status: int) -> None:
        line = {"time": round(time.time(), 3), "role": badge.role, "task": badge.task, "cycle": badge.cycle,
                "attempt": badge.attempt, "api": api, "model": model, "status": status, **counts.usage(),
                "cache_write_tokens": counts.cache_write_tokens, **({"estimated": True} if counts.estimated else {})}
        with self.lock:
            self.totals.add(badge.role, badge.task, badge.cycle, badge.attempt, counts)
            try:
                if self._log is None:
                    self._log = self._open_log()
                self._log.write(json.dumps(line) + "\n")
                self._log.flush()  # whole lines reach the file as they are written: a kill -9 loses none
            except OSError:
                log.exception("cannot append to %s", self.folder / SPEND_LOG)
            self.dirty = True

    def _open_log(self) -> Any:
        """spend.jsonl for appending; a last line a crash tore gets its end first, so the next line is
        not glued to it (done here, by the daemon, not when `check` reads the file)."""
        path = self.folder / SPEND_LOG
        out = open(path, "a", encoding="utf-8")
        try:
            with open(path, "rb") as read:
                torn = read.seek(0, 2) > 0 and read.seek(-1, 2) >= 0 and read.read(1) != b"\n"
        except OSError:
            torn = False
        if torn:
            out.write("\n")
        return out

    def close(self) -> None:
        with self.lock:
            if self._log is not None:
                self._log.close()
                self._log = None

    def of_attempt(self, task: str, cycle: int, attempt: int) -> Counts | None:
        with self.lock:
            counts = self.totals.attempts.get((task, cycle, attempt))
            return None if counts is None else Counts(**vars(counts))

    def write_summary(self) -> None:
        """`spend.json`, for `swarmd status`: the totals and the budgets they count against. The gateway
        calls it every SUMMARY_EVERY_S while something was spent, and once as it stops."""
        with self.lock:
            self.dirty = False
            summary = {
                "run": self.totals.run.usage(),
                "cycles": {str(n): c.usage() for n, c in sorted(self.totals.cycles.items())},
                "roles": {role: c.usage() for role, c in sorted(self.totals.roles.items())},
                "top_tasks": {task: c.usage() for task, c in sorted(
                    self.totals.tasks.items(), key=lambda item: -(item[1].cost_usd or 0.0) - item[1].tokens / 1e9)[:5]},
                "budgets": {scope: vars(getattr(self.budgets, scope)) for scope in ("task", "cycle", "run")},
            }
        try:
            write_atomic(self.folder / SUMMARY, json.dumps(summary, indent=1))
        except OSError:
            log.exception("cannot write %s", self.folder / SUMMARY)

    def _load(self) -> None:
        try:
            with open(self.folder / SPEND_LOG, "rb") as lines:
                for line in lines:
                    self._replay(line)
        except FileNotFoundError:
            return

    def _replay(self, raw: bytes) -> None:
        try:
            line: Any = json.loads(raw)
            counts = Counts(int(line["input_tokens"]), int(line["output_tokens"]), int(line["cached_tokens"]),
                            int(line.get("cache_write_tokens") or 0),
                            None if line["cost_usd"] is None else float(line["cost_usd"]))
            self.totals.add(str(line["role"]), str(line["task"]), int(line["cycle"]), int(line["attempt"]), counts)
        except (ValueError, KeyError, TypeError):
            return  # a line torn by a crash, or not ours


def _task_name(task: str) -> str:
    if "-root@" in task:
        role, _, cycle = task.partition("-root@")
        return f"the {role} of cycle {cycle}"
    return f"task {task}"


def read_summary(folder: Path) -> dict[str, Any] | None:
    """What `write_summary` last wrote, or None."""
    try:
        data = json.loads((folder / SUMMARY).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


def task_key(role: str, task_id: str, cycle: int, root: str = "root") -> str:
    return f"{role}-root@{cycle}" if task_id == root else task_id


