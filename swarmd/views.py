"""What `swarmd status`, `tasks`, `show` and `log` show: plain data (for --json) and its rendering.

Everything is read from the integration branch and from `.git/swarm/`; nothing here writes."""

from __future__ import annotations

import time
from collections import Counter
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table
from rich.tree import Tree

from swarmd import store
from swarmd.config import Config
from swarmd.daemon import lock
from swarmd.daemon.bookkeeping import cycle_usage
from swarmd.daemon.runner import read_records
from swarmd.daemon.scheduler import order
from swarmd.errors import UsageError
from swarmd.git.pool import WorktreePool
from swarmd.git.repo import Repo
from swarmd.tasks import Task, Usage

LOG_TAIL_LINES = 20


def _tip(repo: Repo, config: Config) -> str:
    tip = repo.branch_tip(config.integration.branch)
    if tip is None:
        raise UsageError(f"integration branch {config.integration.branch!r} does not exist; run `swarmd init`")
    return tip


def status(repo: Repo, config: Config) -> dict[str, Any]:
    tip = _tip(repo, config)
    tasks = store.read_tree(repo, tip).tasks
    cycles, _ = store.read_cycles(repo, tip)
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
        "pool": {"worktrees": len(list(pool.root.glob("wt-*/"))), "in_use": len(pool.leases()),
                 "limit": pool.size, "disk_bytes": pool.disk_usage()},
    }


def tasks(repo: Repo, config: Config) -> list[dict[str, Any]]:
    tip = _tip(repo, config)
    found = store.read_tree(repo, tip).tasks
    return [_summary(found[t]) for t in sorted(found, key=order)]


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

STYLE = {"todo": "white", "running": "cyan", "done": "green", "failed": "red", "blocked": "yellow"}


def _money(usage: dict[str, Any]) -> str:
    cost = usage.get("cost_usd")
    tokens = usage["input_tokens"] + usage["output_tokens"]
    return f"{tokens:,} tokens, " + (f"${cost:.2f}" if cost is not None else "cost unknown")


def render_status(data: dict[str, Any], console: Console) -> None:
    daemon = data["daemon"]
    up = f"running (pid {daemon['pid']})" if daemon["running"] else "not running"
    cycle = data["cycle"]
    where = "no cycle yet" if cycle is None else (
        f"cycle {cycle['number']} " + ("in progress" if cycle["open"] else f"closed: {cycle['verdict']}"))
    console.print(f"swarmd {up}; {data['branch']} at {data['tip'][:10]}; {where}")
    counts = ", ".join(f"[{STYLE[s]}]{n} {s}[/]" for s, n in data["tasks"].items()) or "no tasks yet"
    console.print(f"tasks: {counts}")
    console.print(f"spent: {_money(data['usage'])}")
    pool = data["pool"]
    console.print(f"worktrees: {pool['worktrees']} of at most {pool['limit']} ({pool['in_use']} in use), "
                  f"{pool['disk_bytes'] / 1e6:.1f} MB")
    if data["agents"]:
        table = Table("role", "task", "attempt", "running for", box=None)
        for agent in data["agents"]:
            table.add_row(agent["role"], agent["task"], str(agent["attempt"]), f"{agent['elapsed_s']:.0f} s")
        console.print(table)


def render_tasks(rows: list[dict[str, Any]], console: Console) -> None:
    if not rows:
        console.print("no tasks yet")
        return
    root = Tree("tasks")
    nodes: dict[str | None, Tree] = {None: root}
    for row in rows:
        parent = nodes.get(row["parent"], root)
        needs = f" (needs {', '.join(row['needs'])})" if row["needs"] else ""
        label = f"[{STYLE[row['status']]}]{row['id']} {row['status']}[/] {row['title']}{needs}"
        nodes[row["id"]] = parent.add(label + (" [dim]plan[/]" if row["kind"] == "plan" else ""))
    console.print(root)


def render_show(data: dict[str, Any], console: Console) -> None:
    task = data["task"]
    console.print(f"[bold]{task['id']}[/] {task['title']} ([{STYLE[task['status']]}]{task['status']}[/], {task['kind']})")
    if task["needs"]:
        console.print(f"needs: {', '.join(task['needs'])}")
    console.print(task["description"].rstrip(), markup=False)
    if task.get("acceptance"):
        console.print(f"done when: {task['acceptance']}", markup=False)
    for attempt in task.get("attempts", []):
        reason = f": {attempt['reason']}" if attempt.get("reason") else ""
        console.print(f"attempt {attempt['number']} (cycle {attempt.get('cycle')}): {attempt['outcome']}{reason}", markup=False)
    result = task.get("result")
    if result:
        console.print(f"handoff: {result['summary']}", markup=False)
        for key in ("notes", "concerns", "follow_ups"):
            for item in result.get(key, []):
                console.print(f"  {key[:-1].replace('_', '-')}: {item}", markup=False)
    if data["log"]:
        console.print(f"[dim]{data['log']}[/]")
        for line in data["log_tail"]:
            console.print(f"  {line}", markup=False, highlight=False)


def render_log(rows: list[dict[str, Any]], console: Console) -> None:
    if not rows:
        console.print("no cycle has closed yet")
        return
    table = Table("cycle", "verdict", "done", "failed", "duration", "cost", "summary", box=None)
    for row in rows:
        cost = f"${row['cost_usd']:.2f}" if row["cost_usd"] is not None else "-"
        table.add_row(str(row["cycle"]), row["verdict"], str(row["done"]), str(row["failed"]),
                      f"{row['duration_s']:.0f} s", cost, row["summary"])
    console.print(table)
