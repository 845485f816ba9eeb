"""The table the benchmark prints: for each design and N, the figures of the run with the median
parallelism (the range over the repeated runs beside it), then where the wall time went. Also the line
describing the machine, printed before the runs."""

from __future__ import annotations

import os
import platform
import statistics

from hostinfo import cpu_model, git_version
from swarmbench.measured import Run


def machine() -> str:
    cores = len(os.sched_getaffinity(0))
    return f"{cores} usable cores, {cpu_model()}; Python {platform.python_version()}; {git_version()}"


def fmt_par(run: Run | None) -> str:
    if run is None:
        return "-"
    if not run.workers:
        return "failed"
    text = f"{run.parallelism:5.1f} = {run.parallelism / run.n:.2f} N"
    return text + ("" if run.ok else " (!)")


def cell(runs: dict[tuple[str, int], Run], design: str, n: int, what: str) -> str:
    run = runs.get((design, n))
    if run is None or not run.workers:
        return "-"
    w = list(run.workers.values())
    if what == "par":
        return fmt_par(run)
    if what == "wall":
        return f"{run.wall:.2f} s"
    if what == "ideal":
        return f"{statistics.mean(x.end - x.start for x in w):.2f} s"
    if what == "launch_spread":
        launched = [x.launched for x in w if x.launched]
        return f"{max(launched) - min(launched):.2f} s" if launched else "-"
    if what == "start_lag":  # launch line to the script's first instruction
        lags = [x.start - x.launched for x in w if x.launched]
        return f"{1000 * statistics.median(lags):.0f} / {1000 * max(lags):.0f} ms" if lags else "-"
    if what == "seen_lag":  # the script's exit to the loop's "exited" line
        lags = [x.exited - x.end for x in w if x.exited]
        return f"{1000 * statistics.median(lags):.0f} / {1000 * max(lags):.0f} ms" if lags else "-"
    if what == "land_lag":  # the script's exit to its landing
        lags = [x.landed - x.end for x in w if x.landed]
        return f"{1000 * statistics.median(lags):.0f} / {1000 * max(lags):.0f} ms" if lags else "-"
    if what == "land_spread":
        landed = [x.landed for x in w if x.landed]
        return f"{max(landed) - min(landed):.2f} s" if landed else "-"
    if what == "cpu" and run.cpu_s is not None:
        return f"{1000 * run.cpu_s / run.n:.0f} ms"
    if what == "gitcpu" and run.children_cpu_s is not None:
        return f"{1000 * max(0.0, run.children_cpu_s - run.agents_cpu()) / run.n:.0f} ms"
    if what == "startup" and run.startup_cpu_s is not None:
        return f"{run.startup_cpu_s:.2f} s"
    if what == "rss" and run.maxrss_mb is not None:
        return f"{run.maxrss_mb:.0f} MB"
    if what == "lockwait" and run.lock_wait_s:
        return f"{sum(run.lock_wait_s) / run.n * 1000:.0f} ms"
    if what == "lockhold" and run.lock_hold_s:
        return f"{1000 * statistics.median(run.lock_hold_s):.0f} / {1000 * max(run.lock_hold_s):.0f} ms"
    return "-"


def median_run(found: list[Run]) -> Run:
    """The run with the median parallelism; a failed run ranks lowest (with two runs: the lower one)."""
    ranked = sorted(found, key=lambda run: run.parallelism if run.ok else -1.0)
    return ranked[(len(ranked) - 1) // 2]


def parallelism_range(found: list[Run]) -> str:
    values = [run.parallelism / run.n for run in found if run.ok]
    failed = len(found) - len(values)
    text = f"{min(values):.2f}-{max(values):.2f}" if values else ""
    return text + (f", {failed} failed" if failed else "")


def table(runs: dict[tuple[str, int], Run], sizes: list[int], spread: dict[tuple[str, int], str]) -> list[str]:
    width = 26 if spread else 20
    out = [f"{'':44s}" + "".join(f"{'N = ' + str(n):>{width}s}" for n in sizes)]

    def row(label: str, design: str, what: str) -> None:
        def text(n: int) -> str:
            found = cell(runs, design, n, what)
            return found + (f" ({spread[(design, n)]})" if what == "par" and (design, n) in spread else "")

        out.append(f"{label:44s}" + "".join(f"{text(n):>{width}s}" for n in sizes))

    out.append("effective parallelism (task s / wall s)")
    row("  swarmd, warm pool", "warm", "par")
    row("  swarmd, cold pool", "cold", "par")
    row("  flat design (filelock + shared checkout)", "flat", "par")
    out.append("wall s, first launch to last landing")
    row("  swarmd, warm pool", "warm", "wall")
    row("  swarmd, cold pool", "cold", "wall")
    row("  flat design", "flat", "wall")
    row("  (one worker's own seconds, mean)", "warm", "ideal")
    out.append("daemon CPU per task (its process, during run)")
    row("  warm pool", "warm", "cpu")
    row("  cold pool", "cold", "cpu")
    out.append("daemon's git commands' CPU per task")
    row("  warm pool", "warm", "gitcpu")
    row("  cold pool", "cold", "gitcpu")
    out.append("daemon peak memory (ru_maxrss)")
    row("  warm pool", "warm", "rss")
    row("  cold pool", "cold", "rss")
    out.append("where the wall time went (median / max)")
    row("  warm: first to last launch", "warm", "launch_spread")
    row("  cold: first to last launch", "cold", "launch_spread")
    row("  flat: first to last claim", "flat", "launch_spread")
    row("  warm: launch line to script start", "warm", "start_lag")
    row("  cold: launch line to script start", "cold", "start_lag")
    row("  warm: script exit to the loop handling it", "warm", "seen_lag")
    row("  cold: script exit to the loop handling it", "cold", "seen_lag")
    row("  warm: script exit to landed", "warm", "land_lag")
    row("  cold: script exit to landed", "cold", "land_lag")
    row("  flat: script exit to merged", "flat", "land_lag")
    row("  warm: first to last landing", "warm", "land_spread")
    row("  cold: first to last landing", "cold", "land_spread")
    row("  flat: first to last merge", "flat", "land_spread")
    row("  flat: lock waits per task (sum)", "flat", "lockwait")
    row("  flat: lock held per merge", "flat", "lockhold")
    row("  daemon startup CPU (imports), warm", "warm", "startup")
    return out
