"""The pool folder's bookkeeping: slot names, their marker files, and the state the markers put a slot in.

A slot `wt-N` is a worktree folder under `.git/swarm/pool/`. Beside it, written atomically:
    `wt-N.lease` (the branch it holds)  LEASED: handed out, or being made, moved or cleaned
    `wt-N.clean` (the commit it is at)  IDLE: known clean, on a detached HEAD at that commit
    neither, or both                    UNKNOWN: a crash cut a change short; `repair` cleans it before reuse
Nothing here runs git or takes a lock: the pool holds `pool.lock` around every read-modify-write.
"""

from __future__ import annotations

import enum
import os
import re
from dataclasses import dataclass
from pathlib import Path

from swarmd.files import write_atomic

SLOT = re.compile(r"wt-([0-9]+)")
LEASE, CLEAN = "lease", "clean"


class SlotState(enum.Enum):
    IDLE = "idle"
    LEASED = "leased"
    UNKNOWN = "unknown"

    @classmethod
    def of(cls, leased: bool, clean: bool) -> SlotState:
        if leased == clean:
            return cls.UNKNOWN
        return cls.LEASED if leased else cls.IDLE


@dataclass
class Listing:
    """The pool folder as one pass over it saw it: slot folders and marker file names."""

    slots: set[str]
    markers: set[str]

    def state(self, slot: str) -> SlotState:
        return SlotState.of(f"{slot}.{LEASE}" in self.markers, f"{slot}.{CLEAN}" in self.markers)

    def used(self) -> set[str]:
        """Slots with a folder, and slots leased before their folder is made."""
        return self.slots | {m.removesuffix(f".{LEASE}") for m in self.markers if m.endswith(f".{LEASE}")}

    def free_name(self) -> str:
        numbers = {slot_number(slot) for slot in self.used()}
        return f"wt-{min(set(range(1, len(numbers) + 2)) - numbers)}"


class Markers:
    """The marker files of the slots under one pool folder."""

    def __init__(self, root: Path) -> None:
        self.root = root

    def path(self, slot: str, kind: str) -> Path:
        return self.root / f"{slot}.{kind}"

    def listing(self) -> Listing:
        slots, markers = set(), set()
        with os.scandir(self.root) as entries:
            for entry in entries:
                if SLOT.fullmatch(entry.name) and entry.is_dir():
                    slots.add(entry.name)
                elif entry.name.endswith((f".{LEASE}", f".{CLEAN}")):
                    markers.add(entry.name)
        return Listing(slots, markers)

    def slots(self) -> list[str]:
        return sorted(self.listing().slots, key=slot_number)

    def state(self, slot: str) -> SlotState:
        return SlotState.of(self.path(slot, LEASE).exists(), self.path(slot, CLEAN).exists())

    def lease(self, slot: str, branch: str) -> None:
        write_atomic(self.path(slot, LEASE), branch)

    def mark_clean(self, slot: str, commit: str) -> None:
        """LEASED -> IDLE at `commit` (UNKNOWN for an instant: both markers)."""
        write_atomic(self.path(slot, CLEAN), commit)
        self.path(slot, LEASE).unlink(missing_ok=True)

    def take_idle(self, listing: Listing) -> tuple[str, str] | None:
        """An idle slot and the commit it is at, its `.clean` removed (UNKNOWN until the caller leases
        it), or None; the lowest number first, so the pool reuses the same few worktrees."""
        for slot in sorted(listing.slots, key=slot_number):
            if listing.state(slot) is not SlotState.IDLE:
                continue
            clean = self.path(slot, CLEAN)
            try:
                at = clean.read_text().strip()
            except FileNotFoundError:
                continue
            clean.unlink()
            listing.markers.discard(clean.name)
            return slot, at
        return None

    def forget(self, slot: str) -> None:
        for kind in (LEASE, CLEAN):
            self.path(slot, kind).unlink(missing_ok=True)

    def leases(self) -> dict[str, str]:
        """slot -> branch for every slot handed out ("" while a slot is being made for no branch)."""
        leases = {}
        for marker in self.root.glob(f"wt-*.{LEASE}"):
            try:
                leases[marker.stem] = marker.read_text()
            except FileNotFoundError:
                continue  # given back while we looked
        return leases

    def strays(self) -> list[Path]:
        """Markers (and their temporary files) of slots that have no folder."""
        return [m for m in self.root.glob("wt-*.*") if not (self.root / m.name.partition(".")[0]).exists()]


def slot_number(slot: str) -> int:
    return int(slot.split("-")[1])

