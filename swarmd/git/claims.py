"""Claiming slots of the pool for branches: which slot each branch gets, decided and leased in one hold
of the pool lock, all or nothing; nothing in a worktree is touched yet (the pool moves or makes it next).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from filelock import FileLock

from swarmd.errors import GitError, SwarmError
from swarmd.git.repo import Repo
from swarmd.git.slots import LEASE, Listing, Markers


class PoolExhausted(SwarmError):
    pass


@dataclass(frozen=True)
class Claim:
    """A slot leased for a branch, not yet at its commit."""

    slot: str
    path: Path
    branch: str
    tip: str | None  # the branch's commit if it exists (else it is created at `target`)
    target: str
    at: str | None  # the commit an idle worktree is at; None: the worktree must be made


def claim_slots(
    lock: FileLock, markers: Markers, size: int, repo: Repo, branches: Sequence[str], start: str | None
) -> list[Claim]:
    """A slot for each branch, leased: an idle one, or a new one while the pool is under `size`.
    Raises PoolExhausted (with no slot leased) when the pool runs out, GitError when a branch is
    checked out somewhere already or neither exists nor has a `start`."""
    tips = {branch: repo.ref_target(f"refs/heads/{branch}") for branch in branches}
    for branch, tip in tips.items():
        if tip is None and start is None:
            raise GitError(f"branch {branch!r} does not exist and no commit was given to start it at")
    claims: list[Claim] = []
    with lock:
        existing = [branch for branch, tip in tips.items() if tip is not None]
        if existing:  # a branch that does not exist yet cannot be checked out anywhere
            checked_out, leased = repo.checked_out_branches(), set(markers.leases().values())
            for branch in existing:
                if branch in leased or branch in checked_out:
                    where = checked_out.get(branch, "a pooled worktree")
                    raise GitError(f"branch {branch!r} is already checked out in {where}")
        listing = markers.listing()
        try:
            for branch in branches:
                slot, at = _pick(markers, listing, size)
                markers.lease(slot, branch)
                listing.markers.add(f"{slot}.{LEASE}")
                tip = tips[branch]
                claims.append(Claim(slot, markers.root / slot, branch, tip, tip or start or "", at))
        except BaseException:
            for made in claims:
                unclaim(markers, made)
            raise
    return claims


def unclaim(markers: Markers, claim: Claim) -> None:
    """Give back a slot claimed but never touched: idle again at its commit, or never made."""
    if claim.at is not None:
        markers.mark_clean(claim.slot, claim.at)
    else:
        markers.forget(claim.slot)


def _pick(markers: Markers, listing: Listing, size: int) -> tuple[str, str | None]:
    """(an idle slot, the commit it is at), or a new slot name and None."""
    idle = markers.take_idle(listing)
    if idle is not None:
        return idle
    if len(listing.used()) >= size:  # counting those being made
        raise PoolExhausted(
            f"all {size} pooled worktrees are in use; raise the limits in .swarm/config.yaml "
            "or wait for an agent to finish"
        )
    return listing.free_name(), None
