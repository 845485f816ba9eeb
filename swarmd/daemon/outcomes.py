"""What became of one attempt when its agent exited: decided once (`exits.judge`), carried out once
(`exits.Exits.carry_out`)."""

from __future__ import annotations

from dataclasses import dataclass

from swarmd.tasks import Outcome


@dataclass(frozen=True)
class Landed:
    """The work and the task's new status are on the integration branch in `commit`."""

    commit: str
    added: tuple[str, ...] = ()  # task ids a planner created


@dataclass(frozen=True)
class Conflicted:
    """The branch conflicts with the tip (or holds conflict markers): the same worker resolves it."""

    paths: tuple[str, ...]
    reason: str


@dataclass(frozen=True)
class NotLanded:
    """The attempt failed, timed out or was refused: recorded, and the branch kept for inspection."""

    outcome: Outcome
    reason: str


@dataclass(frozen=True)
class Superseded:
    """The task no longer waits for this attempt (it landed or was recorded already): nothing to record."""

    reason: str


AttemptOutcome = Landed | Conflicted | NotLanded | Superseded
