"""Making every slot of the pool usable again after a crash, at the daemon's start.

A kill -9 can land anywhere in the pool's work: a slot's markers say UNKNOWN, or LEASED for an agent
that is gone; a worktree is half made (git does not see it, ADR 0018) or half removed; a git command
left a `*.lock` in a worktree's record; or the pool is larger than its new size. `repair` takes each
case back to IDLE or to nothing, and says what it did. Every lease is taken to be stale: run it only
while no agent works in the pool, under the pool lock.
"""

from __future__ import annotations

import shutil
from collections.abc import Callable
from pathlib import Path

from swarmd.errors import GitError
from swarmd.git import linked
from swarmd.git.cli import run_git
from swarmd.git.repo import Repo
from swarmd.git.slots import Markers, SlotState


def repair(markers: Markers, common_dir: Path, repo: Repo, size: int, clean: Callable[[str], None]) -> list[str]:
    """Repair the pool under `markers.root`; `clean(slot)` takes a whole worktree back to IDLE."""
    root = markers.root
    done: list[str] = []
    for trash in root.glob(linked.TRASH_PREFIX + "*"):
        shutil.rmtree(trash, ignore_errors=True)  # a removal cut short: git saw none of it already
    for slot in markers.slots():
        path = root / slot
        linked.remove_stale_locks(path)
        if not linked.intact(path, repo):
            _destroy(markers, slot)
            done.append(f"removed broken worktree {slot}")
            continue
        if linked.unlock(path):
            done.append(f"unlocked worktree {slot}: it was whole when its making was cut short")
        if markers.state(slot) is not SlotState.IDLE:
            try:
                clean(slot)
            except (GitError, OSError) as exc:  # never a reason for a start to fail: a new one is made
                _destroy(markers, slot)
                done.append(f"removed worktree {slot}: it could not be cleaned ({exc})")
                continue
            done.append(f"cleaned worktree {slot}")
    for slot in markers.slots()[size:]:
        _destroy(markers, slot)
        done.append(f"removed worktree {slot} beyond the pool size of {size}")
    for marker in markers.strays():
        marker.unlink()
        done.append(f"dropped {marker.name}: its worktree was never made")
    for admin in linked.half_made(common_dir) + linked.orphaned(common_dir, root):
        linked.remove_record(admin, root)
        done.append(f"removed the git records of a half-made worktree {admin.name}")
    run_git(["worktree", "prune"], common_dir)
    return done


def _destroy(markers: Markers, slot: str) -> None:
    linked.destroy(markers.root / slot)
    markers.forget(slot)
