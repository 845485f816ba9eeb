"""What `swarmd status`, `tasks`, `show` and `log` show: plain data (for --json) and its rendering.

Everything is read from the integration branch and from `.git/swarm/`; nothing here writes. Text that
agents wrote (titles, summaries, reasons, logs) is printed as it is: nothing in it is read as markup."""

from __future__ import annotations

import os
import time
from collections import Counter
from pathlib import Path
from typing import Any

import click

from swarmd import store
from swarmd.config import Config
from swarmd.daemon.scheduler import order
from swarmd.errors import UsageError
from swarmd.git.repo import Repo
from swarmd.tasks import Task, Usage
from swarmd.transcripts import last_steps

LOG_TAIL_LINES = 20


def _tip(repo: Repo, config: Config) -> str:
    tip = repo.branch_tip(config.integration.branch)
    if tip is None:
        raise UsageError(f"integration branch {config.integration.branch!r} does not exist; run `swarmd init`")
    return tip


class TaskRows(list[dict[str, Any]]):
    """The rows of `swarmd tasks` (what --json prints), and the problems of the files left out."""

    def __init__(self, rows: list[dict[str, Any]], problems: list[str]) -> None:
        super().__init__(rows)
        self.problems = problems


def tree_problems(tree: store.TaskTree) -> list[str]:
    """One line per problem of a task tree, saying which files were left out of it."""
    read = {store.task_path(task_id) for task_id in tree.tasks}
    return [p if p.partition(":")[0] in read else f"could not read {p}" for p in tree.problems]


def status(repo: Repo, config: Config, disk: bool = False) -> dict[str, Any]:
    """`disk`: also walk the pool for its size on disk, which grows with the repository (hundreds of ms
    at a few thousand files per worktree)."""
    # Here, not at the top: only `status` reads the daemon's state and the pool, and `tasks`, `show` and
    # `log` start faster without importing them (tests/test_startup.py).
    from swarmd.daemon import lock, paused_roles
    from swarmd.daemon.bookkeeping import cycle_usage
    from swarmd.daemon.runner import read_records
    from swarmd.gateway.spend import read_summary
    from swarmd.git.pool import WorktreePool

    tip = _tip(repo, config)
    tree = store.read_tree(repo, tip)
    tasks = tree.tasks
    cycles, cycle_problems = store.read_cycles(repo, tip)
    current = cycles[-1] if cycles else None
    usage = sum((c.usage for c in cycles if c.closed), Usage())
    if current is not None and not current.closed:
        usage += cycle_usage(current.number, tasks.values(), current.root, None)[0]
    pid = lock.running_pid(repo.swarm_dir)
    now = time.time()
    pool = WorktreePool(repo, config.pool_size())
    return {
        "daemon": {"running": pid is not None, "pid": pid if pid and pid > 0 else None},
        "branch": config.integration.branch,
        "tip": tip,
        "cycle": None if current is None else {
            "number": current.number, "open": not current.closed, "verdict": current.verdict,
            "started_at": current.started_at.isoformat() if current.started_at else None,
        },
        "tasks": dict(sorted(Counter(t.status.value for t in tasks.values()).items())),
        "agents": [
            {"role": r["role"], "task": r["task"], "attempt": r["attempt"], "cycle": r["cycle"],
             "elapsed_s": round(now - float(r["started_at"]), 1)}  # type: ignore[arg-type]
            for r in (read_records(repo.swarm_dir) if pid is not None else [])
        ],
        "usage": usage.model_dump(mode="json"),
        "spend": _spend(read_summary(repo.swarm_dir), config, current.number if current else None),
        "pool": {"worktrees": len(list(pool.root.glob("wt-*/"))), "in_use": len(pool.leases()),
                 "limit": pool.size, "disk_bytes": pool.disk_usage() if disk else None},
        "paused": paused_roles.read(repo.swarm_dir),
        "problems": tree_problems(tree) + [f"could not read {p}" for p in cycle_problems],
    }


def _spend(summary: dict[str, Any] | None, config: Config, cycle: int | None) -> dict[str, Any] | None:
    """What the gateway counted (live while the daemon runs), against the budgets in the config."""
    if summary is None:
        return None
    budget = config.budget
    return {
        "run": summary.get("run"), "run_budget": budget.run.model_dump(),
        "cycle": (summary.get("cycles") or {}).get(str(cycle)) if cycle else None, "cycle_budget": budget.cycle.model_dump(),
        "task_budget": budget.task.model_dump(), "roles": summary.get("roles") or {},
        "top_tasks": summary.get("top_tasks") or {},
    }


def tasks(repo: Repo, config: Config) -> TaskRows:
    tip = _tip(repo, config)
    tree = store.read_tree(repo, tip)
    return TaskRows([_summary(tree.tasks[t]) for t in sorted(tree.tasks, key=order)], tree_problems(tree))


def show(repo: Repo, config: Config, task_id: str) -> dict[str, Any]:
    tip = _tip(repo, config)
    task = store.read_task(repo, tip, task_id)
    if task is None:
        raise UsageError(f"no task {task_id!r} at {config.integration.branch}; `swarmd tasks` lists them")
    runs = sorted((repo.swarm_dir / "runs" / task_id).glob("c*-a*"), key=lambda p: p.stat().st_mtime)
    log = runs[-1] / "agent.log" if runs else None
    return {
        "task": task.model_dump(mode="json"),
        "log": str(log) if log else None,
        "log_tail": _tail(log) if log else [],
        "steps": last_steps(runs[-1]) if runs else [],  # the built-in agent's, if it ran
    }


def log(repo: Repo, config: Config) -> list[dict[str, Any]]:
    tip = _tip(repo, config)
    cycles, problems = store.read_cycles(repo, tip)
    if problems:
        raise UsageError("; ".join(problems))
    return [
        {"cycle": c.number, "verdict": c.verdict, "done": c.done, "failed": c.failed,
         "duration_s": c.duration_s, "red_s": c.red_s, "cost_usd": c.usage.cost_usd,
         "tokens": c.usage.input_tokens + c.usage.output_tokens, "summary": c.summary}
        for c in cycles if c.closed
    ]


def _summary(task: Task) -> dict[str, Any]:
    return {"id": task.id, "title": task.title, "kind": task.kind.value, "status": task.status.value,
            "parent": task.parent, "needs": task.needs, "attempts": len(task.attempts)}


def _tail(path: Path) -> list[str]:
    try:
        return path.read_text(errors="replace").splitlines()[-LOG_TAIL_LINES:]
    except FileNotFoundError:
        return []


# -- rendering ------------------------------------------------------------------------------------
# Plain lines through click, which drops the colours when stdout is not a terminal. (rich drew these
# until benchmarks/startup.py showed its import and its tree layout cost each view 20 to 30 ms.)

STYLE = {"todo": "white", "running": "cyan", "done": "green", "failed": "red", "blocked": "yellow"}
# Control characters left out of agent text (rich left out the same): a carriage return or a backspace
# in a title could make its line show something other than what the file says.
_HIDDEN = str.maketrans(dict.fromkeys((0x07, 0x08, 0x0B, 0x0C, 0x0D)))


def _say(*parts: str) -> None:
    """One line (or more, if the text has newlines) on stdout; no colours with NO_COLOR set (no-color.org)."""
    click.echo("".join(parts), color=False if os.environ.get("NO_COLOR") else None)


def _literal(text: str) -> str:
    """Text that agents wrote, shown as it is, less the control characters of `_HIDDEN`."""
    return text.translate(_HIDDEN)


def _one_line(text: str) -> str:
    """Text that agents wrote, for one line of the tree or a table: white space, newlines too, as one space."""
    return _literal(" ".join(text.split()))


def _money(usage: dict[str, Any]) -> str:
    cost = usage.get("cost_usd")
    tokens = usage["input_tokens"] + usage["output_tokens"]
    return f"{tokens:,} tokens, " + (f"${cost:.2f}" if cost is not None else "cost unknown")


def _limit(limit: dict[str, Any]) -> str:
    parts = [f"${limit['max_usd']:g}" if limit.get("max_usd") else "", f"{limit['max_tokens']:,} tokens" if limit.get("max_tokens") else ""]
    return " or ".join(part for part in parts if part)


def _against(usage: dict[str, Any], limit: dict[str, Any], scope: str) -> str:
    """`, 42% of $20 for the run`: the nearest of the budget's limits."""
    shares = []
    if limit.get("max_usd"):
        shares.append(((usage.get("cost_usd") or 0.0) / limit["max_usd"], f"${limit['max_usd']:g}"))
    if limit.get("max_tokens"):
        shares.append(((usage["input_tokens"] + usage["output_tokens"]) / limit["max_tokens"], f"{limit['max_tokens']:,} tokens"))
    if not shares:
        return f" (no budget for {scope})"
    share, of = max(shares)
    spent = click.style("spent", fg="red") if share >= 1 else f"{share:.0%}"
    return f", {spent} of {of} for {scope}"


def _table(header: list[str], rows: list[list[str]]) -> None:
    """Columns padded to their widest cell, but the last, which is left as it is; the header in bold."""
    widths = [max(len(cell) for cell in column) for column in zip(header, *rows)]

    def line(cells: list[str]) -> str:
        return "  ".join([*(cell.ljust(width) for cell, width in zip(cells[:-1], widths)), cells[-1]]).rstrip()

    _say(click.style(line(header), bold=True))
    for row in rows:
        _say(line(row))


def render_status(data: dict[str, Any]) -> None:
    daemon = data["daemon"]
    up = f"running (pid {daemon['pid']})" if daemon["running"] else "not running"
    cycle = data["cycle"]
    where = "no cycle yet" if cycle is None else (
        f"cycle {cycle['number']} " + ("in progress" if cycle["open"] else f"closed: {cycle['verdict']}"))
    _say(f"swarmd {up}; {data['branch']} at {data['tip'][:10]}; {where}")
    counts = ", ".join(click.style(f"{n} {s}", fg=STYLE[s]) for s, n in data["tasks"].items()) or "no tasks yet"
    _say(f"tasks: {counts}")
    spend = data.get("spend")
    if spend and spend["run"]:
        _say(f"spent: {_money(spend['run'])}{_against(spend['run'], spend['run_budget'], 'the run')}")
        if spend["cycle"] and data["cycle"]:
            _say(f"  this cycle: {_money(spend['cycle'])}{_against(spend['cycle'], spend['cycle_budget'], 'a cycle')}")
        for role, used in spend["roles"].items():
            _say(f"  {role}s: {_money(used)}")
        if any(spend["task_budget"].values()):
            for task, used in spend.get("top_tasks", {}).items():
                name = f"{task.partition('-root@')[0]} of cycle {task.partition('-root@')[2]}" if "-root@" in task else f"task {task}"
                _say(f"  {name}: {_money(used)}{_against(used, spend['task_budget'], 'a task')}")
    else:
        _say(f"spent: {_money(data['usage'])}")
    pool = data["pool"]
    disk = "" if pool["disk_bytes"] is None else f", {pool['disk_bytes'] / 1e6:.1f} MB"
    _say(f"worktrees: {pool['worktrees']} of at most {pool['limit']} ({pool['in_use']} in use){disk}")
    for role, why in data["paused"].items():
        _say(click.style(_literal(f"paused: the {role} role ({why}); fix agents.{role} in .swarm/config.yaml "
                                  "and start swarmd again"), fg="red"))
    if data["agents"]:
        _table(["role", "task", "attempt", "running for"],
               [[a["role"], a["task"], str(a["attempt"]), f"{a['elapsed_s']:.0f} s"] for a in data["agents"]])
    _render_problems(data["problems"])


def _render_problems(problems: list[str]) -> None:
    for problem in problems:
        _say(click.style(_literal(problem), fg="red"))


def render_tasks(rows: TaskRows) -> None:
    if not rows:
        _say("no tasks could be read" if rows.problems else "no tasks yet")
    else:
        # A task goes under its parent if that came before it (ids in order), else at the top level.
        children: dict[str | None, list[dict[str, Any]]] = {None: []}
        for row in rows:
            children[row["parent"] if row["parent"] in children else None].append(row)
            children[row["id"]] = []
        _say("tasks")
        _render_branch(children, None, "")
    _render_problems(rows.problems)


def _render_branch(children: dict[str | None, list[dict[str, Any]]], parent: str | None, indent: str) -> None:
    for row in children[parent]:
        last = row is children[parent][-1]
        head = click.style(f"{row['id']} {row['status']}", fg=STYLE[row["status"]])
        needs = f" (needs {', '.join(row['needs'])})" if row["needs"] else ""
        plan = click.style(" plan", dim=True) if row["kind"] == "plan" else ""
        _say(indent, "└── " if last else "├── ", head, f" {_one_line(row['title'])}{needs}", plan)
        _render_branch(children, row["id"], indent + ("    " if last else "│   "))


def render_show(data: dict[str, Any]) -> None:
    task = data["task"]
    _say(click.style(task["id"], bold=True), _literal(f" {task['title']} ("),
         click.style(task["status"], fg=STYLE[task["status"]]), f", {task['kind']})")
    if task["needs"]:
        _say(f"needs: {', '.join(task['needs'])}")
    _say(_literal(task["description"].rstrip()))
    if task.get("acceptance"):
        _say(_literal(f"done when: {task['acceptance']}"))
    for attempt in task.get("attempts", []):
        reason = f": {attempt['reason']}" if attempt.get("reason") else ""
        _say(_literal(f"attempt {attempt['number']} (cycle {attempt.get('cycle')}): {attempt['outcome']}{reason}"))
    result = task.get("result")
    if result:
        _say(_literal(f"handoff: {result['summary']}"))
        for key in ("notes", "concerns", "follow_ups"):
            for item in result.get(key, []):
                _say(_literal(f"  {key[:-1].replace('_', '-')}: {item}"))
    if data["log"]:
        _say(click.style(data["log"], dim=True))
        for line in data["log_tail"]:
            _say(_literal(f"  {line}"))
    if data["steps"]:
        _say(click.style("the agent's last steps (transcript.jsonl beside its log):", dim=True))
        for line in data["steps"]:
            _say(_literal(f"  {line}"))


def render_log(rows: list[dict[str, Any]]) -> None:
    if not rows:
        _say("no cycle has closed yet")
        return
    _table(["cycle", "verdict", "done", "failed", "duration", "cost", "summary"], [
        [str(row["cycle"]), str(row["verdict"]), str(row["done"]), str(row["failed"]), f"{row['duration_s']:.0f} s",
         f"${row['cost_usd']:.2f}" if row["cost_usd"] is not None else "-",
         _one_line(row["summary"] or "")]
        for row in rows
    ])
