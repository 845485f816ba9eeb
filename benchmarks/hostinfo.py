"""What a benchmark says about the machine it ran on: every figure depends on it, so both benchmarks print
the processor, the git version and the load average with their results."""

from __future__ import annotations

import os
from pathlib import Path

from gitcmd import git


def cpu_model() -> str:
    """The processor's model name from /proc/cpuinfo, or "?"."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return "?"


def git_version() -> str:
    return git(Path.cwd(), "--version")


def load_average() -> str:
    """The 1, 5 and 15 minute load averages, as "0.52 0.61 0.70"."""
    return " ".join(f"{x:.2f}" for x in os.getloadavg())
