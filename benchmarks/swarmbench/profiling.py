"""Where the daemon's time went under `--profile`: the cProfile data the daemon child wrote, summarised as
the loop's main steps (calls, seconds, share of the run) and the top functions by cumulative time."""

from __future__ import annotations

from pathlib import Path

# (file, function, what it is) for the breakdown of the loop's time under --profile
BREAKDOWN = (
    ("launch.py", "start_batch", "launching a batch of agents (all of it)"),
    ("pool.py", "acquire_many", "  pool.acquire_many: the loop's share (git moves them in threads)"),
    ("pool.py", "_claim", "    _claim: a slot, under the pool lock"),
    ("pool.py", "_hand_out", "    _hand_out: the branch and HEAD"),
    ("prompts.py", "render", "  prompts.render (jinja, each template compiled once)"),
    ("runner.py", "start", "  Runner.start (Popen and the agent record)"),
    ("bookkeeping.py", "start", "  Ledger.start (one commit: every task running)"),
    ("pool.py", "acquire", "pool.acquire: one worktree on the loop (root planner, judge)"),
    ("linked.py", "move", "  linked.move: git read-tree -m -u to the tip"),
    ("linked.py", "create", "  linked.create: a new worktree (cold)"),
    ("repo.py", "checked_out_branches", "Repo.checked_out_branches (every worktree's HEAD)"),
    ("exits.py", "handle", "handling an agent's exit"),
    ("integrate.py", "land", "  Integrator.land (in-memory merge + compare-and-swap)"),
    ("pool.py", "give_back", "  pool.give_back (the release itself runs on the pool's thread)"),
    ("repo.py", "delete_branch", "  Repo.delete_branch (the landed branch)"),
    ("store.py", "read_tree", "store.read_tree (once per burst of events)"),
    ("bookkeeping.py", "cycle_at", "Ledger.cycle_at (parsed once per blob)"),
    ("store.py", "parse_task", "parsing a task file, from any caller (libyaml + pydantic)"),
    ("cli.py", "run_git", "every git command the loop waited for"),
)


def profile_breakdown(path: Path) -> str:
    """Calls, total seconds and ms per call of the loop's main steps, from the cProfile data."""
    import pstats

    stats = pstats.Stats(str(path)).stats  # type: ignore[attr-defined]
    total = max(ct for (_, _, name), (_, _, _, ct, _) in stats.items() if name == "run")
    out = [f"  {'step':68s} {'calls':>6s} {'total s':>8s} {'ms/call':>8s} {'of run':>7s}"]
    for file, function, label in BREAKDOWN:
        calls, seconds = 0, 0.0
        for (filename, _, name), (_, nc, _, ct, _) in stats.items():
            if name == function and filename.endswith("/" + file):
                calls, seconds = calls + nc, seconds + ct
        if calls:
            out.append(f"  {label:68s} {calls:6d} {seconds:8.2f} {1000 * seconds / calls:8.1f} {seconds / total:7.0%}")
    return "\n".join(out)


def profile_text(path: Path, limit: int = 30) -> str:
    import io
    import pstats

    buffer = io.StringIO()
    stats = pstats.Stats(str(path), stream=buffer)
    stats.strip_dirs().sort_stats("cumulative").print_stats(limit)
    text = buffer.getvalue()
    # keep the table, drop pstats' preamble about the file
    start = text.find("   ncalls")
    header = [line for line in text.splitlines() if "function calls" in line]
    return "\n".join(header + [text[start:].rstrip()]) if start >= 0 else text
