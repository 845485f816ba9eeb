"""What the benchmark prints of its runs: a progress line per run, the table (median and p90 of each side,
the added ms, the ratio, the CPU per request through the gateway), the targets of issue 10, and under
`--profile` the gateway thread's hot spots."""

from __future__ import annotations

import statistics
from pathlib import Path

from gatewaybench.load import Run
from gatewaybench.payloads import Case

TARGET_ADDED_MS = 5.0
TARGET_FIRST_BYTE_MS = 2.0


def progress(load: str, case: Case, side: str, n: int, run: Run) -> str:
    count = len(run.samples)
    cpu = ", ".join(f"{name} {run.cpu[name] * 1000 / count:.2f}" for name in ("gateway", "upstream", "client"))
    waited = "" if run.waited is None else f"; waited for a CPU {run.waited:.0%}"
    return (f"  {load:19s} {case.name:17s} {side:7s} #{n + 1}: {count:4d} requests in {run.seconds:5.1f} s, "
            f"median {statistics.median(s.total for s in run.samples) * 1000:7.2f} ms; CPU ms a request: {cpu}"
            + waited)


def p90(values: list[float]) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(0.9 * (len(ordered) - 1)))]


def figures(runs: list[Run], what: str) -> list[float]:
    samples = [s for run in runs for s in run.samples]
    if what == "total":
        return [s.total * 1000 for s in samples]
    if what == "first":
        return [s.first * 1000 for s in samples]
    return [s.total * 1000 / s.events for s in samples if s.events]


def added(runs: dict[tuple[str, str, str], list[Run]], load: str, case: str, what: str) -> float:
    return (statistics.median(figures(runs[(load, case, "gateway")], what))
            - statistics.median(figures(runs[(load, case, "direct")], what)))


def table(runs: dict[tuple[str, str, str], list[Run]], loads: list[str], cases: list[Case]) -> list[str]:
    out = [f"  {'':17s} {'':14s} {'direct':>17s}   {'via gateway':>17s}   {'added':>17s}   {'ratio':>6s}",
           f"  {'case':17s} {'ms':14s} {'median':>8s} {'p90':>8s}   {'median':>8s} {'p90':>8s}   {'median':>8s} "
           f"{'p90':>8s}   {'median':>6s}"]
    for load in loads:
        counts = {side: len(figures(runs[(load, cases[0].name, side)], "total")) for side in ("direct", "gateway")}
        out.append(f"{load} ({counts['direct']} requests a side)")
        for case in cases:
            whats = (("total", "total"), ("first", "first byte")) + ((("event", "per event"),) if case.stream else ())
            for n, (what, label) in enumerate(whats):
                direct = figures(runs[(load, case.name, "direct")], what)
                gateway = figures(runs[(load, case.name, "gateway")], what)
                dm, dp, gm, gp = statistics.median(direct), p90(direct), statistics.median(gateway), p90(gateway)
                out.append(f"  {case.name if n == 0 else '':17s} {label:14s} {dm:8.3f} {dp:8.3f}   "
                           f"{gm:8.3f} {gp:8.3f}   "
                           f"{gm - dm:+8.3f} {gp - dp:+8.3f}   {gm / dm:5.2f}x")
            gw = runs[(load, case.name, "gateway")]
            count = sum(len(run.samples) for run in gw)
            cpu = {name: sum(run.cpu[name] for run in gw) * 1000 / count for name in ("gateway", "upstream", "client")}
            events = statistics.median(s.events for run in gw for s in run.samples)
            per_event = f" ({cpu['gateway'] * 1000 / events:.0f} us per event)" if events else ""
            waited = [run.waited for run in gw + runs[(load, case.name, "direct")] if run.waited is not None]
            out.append(f"  {'':17s} CPU ms per request through the gateway: gateway {cpu['gateway']:.2f}{per_event}, "
                       f"upstream {cpu['upstream']:.2f}, client {cpu['client']:.2f}"
                       + (f"; waited for a CPU {statistics.mean(waited):.0%}" if waited else ""))
    return out


def targets(runs: dict[tuple[str, str, str], list[Run]], loads: list[str], cases: list[Case]) -> list[str]:
    one_agent, realistic, worst = loads
    streamed = [case for case in cases if case.stream]
    checks = [(f"added per request at {realistic}, realistic arrivals, median", TARGET_ADDED_MS, realistic, cases,
               "total")]
    checks += [(f"added to the first byte at {load}, median", TARGET_FIRST_BYTE_MS, load, streamed, "first")
               for load in (one_agent, realistic)]
    out = ["targets (issue 10; on the realistic arrivals, not the lockstep worst case):"]
    for text, limit, load, which, what in checks:
        values = {case.name: added(runs, load, case.name, what) for case in which}
        if not values:
            continue
        verdict = "PASS" if max(values.values()) < limit else "MISS"
        found = ", ".join(f"{name} {value:+.2f}" for name, value in values.items())
        out.append(f"  [{verdict}] {text} < {limit:g} ms: {found} ms")
    found = ", ".join(f"{case.name} {added(runs, worst, case.name, 'total'):+.2f} (first byte "
                      f"{added(runs, worst, case.name, 'first'):+.2f})" for case in cases)
    out.append(f"  [info] worst case, {worst}, added median ms (no target): {found}")
    return out


def hot_spots(path: Path, limit: int = 20) -> list[str]:
    """The gateway thread's profile: where its busy time went (waiting in epoll left out), by own time, and
    swarmd's own functions by cumulative time."""
    import pstats

    stats = pstats.Stats(str(path)).stats  # type: ignore[attr-defined]
    idle = sum(tt for (_, _, name), (_, _, tt, _, _) in stats.items() if "select.epoll" in name)
    busy = sum(tt for _, _, tt, _, _ in stats.values()) - idle

    def rows(entries: list[tuple[tuple[str, int, str], float, int]]) -> list[str]:
        return [f"  {seconds / busy:6.1%} {seconds * 1e6 / calls:9.1f} {calls:8d}  "
                f"{Path(file).name}:{line}({name})" for (file, line, name), seconds, calls in entries]

    own = sorted(((key, tt, nc) for key, (_, nc, tt, _, _) in stats.items() if "select.epoll" not in key[2]),
                 key=lambda row: -row[1])[:limit]
    ours = sorted(((key, ct, nc) for key, (_, nc, _, ct, _) in stats.items() if "/swarmd/" in key[0]),
                  key=lambda row: -row[1])[:limit]
    header = f"  {'of busy':>6s} {'us/call':>9s} {'calls':>8s}  function"
    return ([f"busy {busy:.2f} s (idle in epoll {idle:.2f} s); by own time:", header, *rows(own),
             "swarmd's functions by cumulative time (a coroutine's calls count each time it resumes):", header,
             *rows(ours)])
