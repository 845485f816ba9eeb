"""Timing the cases: each operation's samples in ms and their medians, the order the compared methods take
turns in, and flushing the disk between cases so that one case's writes are not paid by the next."""

from __future__ import annotations

import os
import statistics
import time
from dataclasses import dataclass, field


def ms_since(start: float) -> float:
    return (time.perf_counter() - start) * 1000


def median(values: list[float]) -> float:
    return statistics.median(values)


def rotate(items: list[str], by: int) -> list[str]:
    by %= len(items)
    return items[by:] + items[:by]


def quiet_disk() -> None:
    """Flush dirty pages between cases, so one case's writes are not paid by the next one."""
    os.sync()
    time.sleep(0.2)


@dataclass
class Samples:
    values: dict[str, list[float]] = field(default_factory=dict)

    def add(self, name: str, value: float) -> None:
        self.values.setdefault(name, []).append(value)

    def med(self, name: str) -> float:
        return median(self.values[name])

    def describe(self, name: str) -> str:
        v = sorted(self.values[name])
        return f"median {median(v):8.2f} ms   min {v[0]:8.2f}   max {v[-1]:8.2f}   n={len(v)}"
