"""Named places where a test can make swarmd die, to prove that a crash at any of them is recoverable.

`SWARMD_CRASH_AT=<name>:<n>` kills the process with SIGKILL the n-th time it passes `<name>`. Without
that variable a failpoint is one environment lookup. The counter below is the one piece of module-level
mutable state in swarmd, and it exists only for this test instrumentation.
"""

from __future__ import annotations

import os
import signal

NAMES = (
    "commit:before-swap",  # a .swarm/ commit (a status change, a cycle record, the judge's) is built
    "commit:after-swap",  # ... and the branch has moved to it
    "judge:before-swap",  # the judge's commit that closes a cycle is built
    "judge:after-swap",  # ... and the branch has moved to it
    "land:before-swap",  # a landing commit (the work and the task's new status) is built
    "land:after-swap",  # ... and the branch has moved to it
    "pool:move",  # a pooled worktree is half way to its new commit
    "pool:reset",  # a returned worktree is reset but not yet cleaned
    "agent:commit",  # what an agent left is staged but not committed
)
_passed: dict[str, int] = {}


def reached(name: str) -> None:
    spec = os.environ.get("SWARMD_CRASH_AT")
    if not spec:
        return
    target, _, nth = spec.rpartition(":")
    if target != name:
        return
    _passed[name] = _passed.get(name, 0) + 1
    if _passed[name] == int(nth or 1):
        os.kill(os.getpid(), signal.SIGKILL)
