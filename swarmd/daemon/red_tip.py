"""What verify says of the integration tip, as the loop keeps it: the last check (the judge reads it),
how long the tip was red in this cycle, and a fix task under swarmd's own id 0 when it turns red, at
most `max_attempts` of them per cycle, so a fix that does not fix is not retried forever (ADR 0013)."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from swarmd import store
from swarmd.daemon.bookkeeping import Ledger
from swarmd.daemon.verify import Verified
from swarmd.git.repo import Repo
from swarmd.tasks import RESERVED_ROOT, Kind, Status, Task


class RedTip:
    def __init__(self, repo: Repo, ledger: Ledger, max_fixes: int, say: Callable[[str], None]) -> None:
        self.repo = repo
        self.ledger = ledger
        self.max_fixes = max_fixes
        self.say = say
        self.last: Verified | None = None
        self.red_since: float | None = None  # time.monotonic()
        self.red_s = 0.0  # red this cycle before red_since
        self.fixes = 0  # fix tasks created this cycle

    def new_cycle(self, red_s: float) -> None:
        """A cycle opens (or continues, having been red for `red_s` before a restart)."""
        self.red_s, self.fixes = red_s, 0
        if self.red_since is not None:
            self.red_since = time.monotonic()  # still red: this cycle counts from its own start

    def red_seconds(self) -> float:
        return self.red_s + (time.monotonic() - self.red_since if self.red_since is not None else 0.0)

    def for_judge(self) -> dict[str, Any] | None:
        """The last check of the tip, if one ran."""
        last = self.last
        return None if last is None else {"command": " ".join(last.command), "passed": last.passed,
                                          "commit": last.commit, "output": last.output}

    def verified(self, result: Verified) -> None:
        if result.problem:
            self.say(f"verify could not check {result.commit[:10]}: {result.problem}")
            return
        self.last = result
        if result.passed:
            if self.red_since is not None:
                self.red_s += time.monotonic() - self.red_since
                self.red_since = None
                self.say(f"the tip is green again at {result.commit[:10]}")
            return
        if self.red_since is None:
            self.red_since = time.monotonic()
        self.say(f"the tip is red at {result.commit[:10]}: `{' '.join(result.command)}` failed")
        if self.fixes >= self.max_fixes:
            self.say(f"{self.fixes} fix tasks this cycle did not make it green; the judge will see it")
            return
        created = self.ledger.commit(lambda tip: fix_task(self.repo, tip, result), "verify failed: a task to fix the tip")
        if created.commit:
            self.fixes += 1
            self.say("created a task to fix it")


def fix_task(repo: Repo, tip: str, result: Verified) -> dict[str, bytes | None] | None:
    """A work task under swarmd's own id 0 to fix a red tip, unless one is already open."""
    tasks = store.read_tree(repo, tip).tasks
    own = [t for t in tasks.values() if t.parent == RESERVED_ROOT]
    if any(t.status in (Status.TODO, Status.RUNNING) for t in own):
        return None
    number = max((int(t.id.rpartition(".")[2]) for t in own), default=0) + 1
    command = " ".join(result.command)
    task = Task(
        id=f"{RESERVED_ROOT}.{number}", title=f"Make `{command}` pass again", kind=Kind.WORK, parent=RESERVED_ROOT,
        description=(f"`{command}` fails at the integration tip ({result.commit[:10]}). Find what broke it and fix it "
                     f"forward.\n\nIts output ends with:\n\n{result.output}\n"),
        acceptance=f"`{command}` passes.",
    )
    return {store.task_path(task.id): store.dump_task(task)}
