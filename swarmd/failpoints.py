"""Named places where a test can make swarmd die, to prove that a crash at any of them is recoverable.

`SWARMD_CRASH_AT=<name>:<n>` kills the process with SIGKILL the n-th time it passes `<name>`;
`SWARMD_RAISE_AT=<name>:<n>` raises `FailpointError` there instead, standing in for a bug, to prove that
the daemon survives one. Without those variables a failpoint is two environment lookups. The counter
below (and its lock) is the one piece of module-level mutable state in swarmd, and it exists only for
this test instrumentation.
"""

from __future__ import annotations

import os
import signal
import threading

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
    "exit:handle",  # an agent's exit is about to be judged (its result read, nothing tried yet)
)


class FailpointError(RuntimeError):
    """Raised at a failpoint named by SWARMD_RAISE_AT: a stand-in for a bug."""


_passed: dict[str, int] = {}
_counting = threading.Lock()  # failpoints are passed on several threads (agents' waiters, the pool's)


def reached(name: str) -> None:
    for variable in ("SWARMD_CRASH_AT", "SWARMD_RAISE_AT"):
        spec = os.environ.get(variable)
        if not spec:
            continue
        target, _, nth = spec.rpartition(":")
        if target != name:
            continue
        key = f"{variable}:{name}"
        with _counting:
            _passed[key] = passed = _passed.get(key, 0) + 1
        if passed != int(nth or 1):
            continue
        if variable == "SWARMD_CRASH_AT":
            os.kill(os.getpid(), signal.SIGKILL)
        raise FailpointError(f"failpoint {name} reached (SWARMD_RAISE_AT)")
