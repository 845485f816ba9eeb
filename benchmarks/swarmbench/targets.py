"""The targets the figures are held to: the warm pool's parallelism at N = 10 and 100, swarmd ahead of
the flat design in every run at N = 50 and 100, and the daemon's memory at N = 100."""

from __future__ import annotations

from swarmbench.measured import Run


def targets(runs: dict[tuple[str, int], Run], every: dict[tuple[str, int], list[Run]]) -> list[tuple[str, bool | None, str]]:
    """(target, met or None when not run, the figures). "Ahead" must hold for every run: swarmd's worst run
    above the flat design's best, so that noise between runs is not taken for a lead."""
    found: list[tuple[str, bool | None, str]] = []

    def par(design: str, n: int) -> float | None:
        run = runs.get((design, n))
        return run.parallelism / n if run and run.workers and run.ok else None

    for n, goal in ((10, 0.9), (100, 0.8)):
        value = par("warm", n)
        found.append((f"warm pool at N = {n}: at least {goal} N", None if value is None else value >= goal,
                      "not run" if value is None else f"{value:.2f} N"))
    for n in (50, 100):
        ours, flat = par("warm", n), par("flat", n)
        if ours is None or flat is None:
            found.append((f"swarmd (warm) ahead of the flat design at N = {n}", None, "not run"))
            continue
        worst = min(r.parallelism / n if r.ok else 0.0 for r in every[("warm", n)])
        best = max(r.parallelism / n for r in every[("flat", n)] if r.ok)
        text = f"{ours:.2f} N against {flat:.2f} N (medians)"
        if len(every[("warm", n)]) > 1 or len(every[("flat", n)]) > 1:
            text += f"; swarmd's worst run {worst:.2f} N, the flat design's best {best:.2f} N"
        found.append((f"swarmd (warm) ahead of the flat design at N = {n}, in every run", worst > best, text))
    run = runs.get(("warm", 100))
    if run is None or run.maxrss_mb is None:
        found.append(("daemon memory under 150 MB at N = 100", None, "not run"))
    else:
        found.append(("daemon memory under 150 MB at N = 100", run.maxrss_mb < 150, f"{run.maxrss_mb:.0f} MB"))
    return found
