"""What a start repairs after a crash (kill -9 of the daemon, alone or with its agents).

Runs under the daemon lock, before anything else: agents the dead daemon left running are stopped,
their tasks go back to todo (an attempt cut short by a crash does not count), their branches are kept
under another name, stale locks go, and the worktree pool is repaired.
"""

from __future__ import annotations

import os
import signal
import time
from collections.abc import Callable
from pathlib import Path

from swarmd.daemon.bookkeeping import Ledger, Stale
from swarmd.daemon.branches import keep_branch
from swarmd.daemon.runner import process_start, read_records, run_key
from swarmd.errors import GitError
from swarmd.git.pool import WorktreePool
from swarmd.git.worktree import commit_all
from swarmd.tasks import Attempt, Kind, Outcome, Role, Status, Usage


def recover(ledger: Ledger, pool: WorktreePool, swarm_dir: Path,
            spent: Callable[[Role, str, int, int], Usage | None] = lambda role, task, cycle, attempt: None) -> list[str]:
    """`spent`: what the gateway counted for an attempt (it kept count across the crash)."""
    done: list[str] = []
    records = read_records(swarm_dir)
    for record in records:
        if stop_leftovers(int(record["pid"]), record.get("proc_start")):  # type: ignore[arg-type]
            done.append(f"stopped the {record['role']} of {record['task']} that was still running")
    # Nothing of ours runs now: a lock left under our refs is a crash's.
    heads = ledger.repo.common_dir / "refs" / "heads"
    for lock in [heads / f"{ledger.branch}.lock", *(heads / "swarm").rglob("*.lock")]:
        if lock.exists():
            lock.unlink()
            done.append(f"removed a stale lock {lock.relative_to(heads)}")
    for record in records:
        task_id, attempt, cycle = str(record["task"]), int(record["attempt"]), int(record["cycle"])  # type: ignore[arg-type]
        if record["role"] != "judge":
            save_leftovers(pool, str(record["slot"]), str(record["branch"]),
                           f"swarmd: what the {record['role']} of {task_id} left at a crash")
            crashed(ledger, task_id, cycle, attempt, str(record["branch"]),
                    spent(Role(str(record["role"])), task_id, cycle, attempt))
            done.append(f"{task_id}: attempt {attempt} was cut short; it goes back to todo")
        (swarm_dir / "agents" / f"{run_key(str(record['role']), str(record['task']))}.json").unlink(missing_ok=True)
    ledger.repo.delete_branch("swarm/verify")
    # A work task marked running with no agent record: a crash between the record of a conflict re-run
    # and the start of that run, say.
    tip = ledger.tip()
    for task in ledger.tree(tip).tasks.values():
        if task.status is Status.RUNNING and task.kind is Kind.WORK:
            crashed(ledger, task.id, None, len(task.attempts) + 1, f"swarm/task/{task.id}")
            done.append(f"{task.id}: was running with no agent; it goes back to todo")
    done += pool.repair()
    return done


def crashed(ledger: Ledger, task_id: str, cycle: int | None, attempt: int, branch: str,
            usage: Usage | None = None) -> None:
    """Record an attempt the crash cut short, and keep its branch (its commits) for the record."""
    reason = "the daemon stopped while it ran"
    try:
        ledger.record(task_id, cycle or 1, Attempt(number=attempt, cycle=cycle, outcome=Outcome.CRASHED, reason=reason,
                                                   usage=usage), f"{task_id}: attempt {attempt} cut short by a crash")
    except Stale:
        pass  # it landed, or was recorded, before the crash
    keep_branch(ledger.repo, task_id, cycle, attempt, branch, "crashed")


def save_leftovers(pool: WorktreePool, slot: str, branch: str, message: str) -> None:
    """Commit what a crashed agent left in its worktree to its branch, before the pool cleans it."""
    path = pool.root / slot
    if pool.repo.checked_out_branches().get(branch) != path or pool.repo.branch_tip(branch) is None:
        return  # the worktree is no longer on the agent's branch, the branch is gone, or it was never made
    pool.remove_stale_locks(path)
    try:
        commit_all(path, message)
    except GitError:
        pass  # a worktree a crash cut short while it was made: nothing of the agent's is in it


def stop_leftovers(pgid: int, proc_start: object) -> bool:
    """Kill what is left of an agent's process group; True if anything was. The group is ours if its
    leader is our agent (same start time), or if the leader is gone and members remain: the kernel
    does not hand out a pid that is still some group's id."""
    leader_start = process_start(pgid)
    if leader_start is not None and proc_start is not None and leader_start != proc_start:
        return False  # the pid was recycled by an unrelated process
    members = [pid for pid in _pids() if _pgid(pid) == pgid]
    if not members:
        return False
    try:
        os.killpg(pgid, signal.SIGKILL)
    except ProcessLookupError:
        return False
    deadline = time.monotonic() + 5
    while any(_pgid(pid) == pgid and not _zombie(pid) for pid in members) and time.monotonic() < deadline:
        time.sleep(0.01)  # SIGKILL is delivered at once, but the exit (and its open files) take a moment
    return True


def _zombie(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()[0] == "Z"
    except OSError:
        return True


def _pids() -> list[int]:
    return [int(name) for name in os.listdir("/proc") if name.isdigit()]


def _pgid(pid: int) -> int | None:
    try:
        return os.getpgid(pid)
    except (ProcessLookupError, PermissionError):
        return None
