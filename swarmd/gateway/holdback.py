"""A provider's 429 is everyone's: when an upstream says "too many requests", every agent's next request
to it waits at the gateway until the time it asked for (its Retry-After, else a delay that doubles with
each 429 in a row), instead of each of a hundred agents retrying on its own schedule. Waiters are let
go spread over a moment, so the end of a hold is not a new storm."""

from __future__ import annotations

import asyncio
import random
import time
from email.utils import parsedate_to_datetime

FIRST_HOLD_S = 1.0  # after a 429 with no Retry-After; doubled for each one in a row
LONGEST_HOLD_S = 120.0
SPREAD_S = 1.0  # waiters are let go over up to this long after a hold ends


class Holdback:
    def __init__(self) -> None:
        self.until: dict[str, float] = {}  # upstream -> time.monotonic() its hold ends
        self.in_a_row: dict[str, int] = {}

    async def wait(self, upstream: str) -> float:
        """Wait out the upstream's hold, if one is on; returns the seconds waited."""
        waited = 0.0
        while (left := self.until.get(upstream, 0.0) - time.monotonic()) > 0:  # a new 429 may extend it
            pause = left + random.uniform(0, min(SPREAD_S, left))
            await asyncio.sleep(pause)
            waited += pause
        return waited

    def answered(self, upstream: str, status: int, retry_after: str | None) -> float | None:
        """Note an answer; after a 429, hold the upstream back and return for how long."""
        if status != 429:
            self.in_a_row.pop(upstream, None)
            return None
        row = self.in_a_row.get(upstream, 0) + 1
        self.in_a_row[upstream] = row
        hold = min(LONGEST_HOLD_S, _seconds(retry_after) or FIRST_HOLD_S * 2 ** (row - 1))
        self.until[upstream] = max(self.until.get(upstream, 0.0), time.monotonic() + hold)
        return hold


def _seconds(retry_after: str | None) -> float | None:
    """Retry-After as seconds: a number, or an HTTP date."""
    if not retry_after:
        return None
    try:
        seconds = float(retry_after)
    except ValueError:
        try:
            seconds = parsedate_to_datetime(retry_after).timestamp() - time.time()
        except (TypeError, ValueError):
            return None
    return seconds if seconds > 0 else None
