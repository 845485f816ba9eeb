"""What `swarmd status`, `tasks`, `show` and `log` show: plain data (for --json) and its rendering.

Everything is read from the integration branch and from `.git/swarm/`; nothing here writes. Text that
agents wrote (titles, summaries, reasons, logs) is rendered as `rich.text.Text`, never read as markup."""

from __future__ import annotations

import time
from collections import Counter
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table
from rich.text import Text
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


class TaskRows(list[dict[str, Any]]):
    """The rows of `swarmd tasks` (what --json prints), and the problems of the files left out."""

    def __init__(self, rows: list[dict[str, Any]], problems: list[str]) -> None:
        super().__init__(rows)
        self.problems = problems


def tree_problems(tree: store.TaskTree) -> list[str]:
    """One line per problem of a task tree, saying which files were left out of it."""
    read = {store.task_path(task_id) for task_id in tree.tasks}
    return [p if p.partition(":")[0] in read else f"could not read {p}" for p in tree.problems]


def status(repo: Repo, config: Config) -> dict[str, Any]:
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
        "pool": {"worktrees": len(list(pool.root.glob("wt-*/"))), "in_use": len(pool.leases()),
                 "limit": pool.size, "disk_bytes": pool.disk_usage()},
        "problems": tree_problems(tree) + [f"could not read {p}" for p in cycle_problems],
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
    console.print(Text(f"swarmd {up}; {data['branch']} at {data['tip'][:10]}; {where}"))
    counts = ", ".join(f"[{STYLE[s]}]{n} {s}[/]" for s, n in data["tasks"].items()) or "no tasks yet"
    console.print(f"tasks: {counts}")
    console.print(f"spent: {_money(data['usage'])}")
    pool = data["pool"]
    console.print(f"worktrees: {pool['worktrees']} of at most {pool['limit']} ({pool['in_use']} in use), "
                  f"{pool['disk_bytes'] / 1e6:.1f} MB")
    if data["agents"]:
        table = Table("role", "task", "attempt", "running for", box=None)
        for agent in data["agents"]:
            table.add_row(Text(agent["role"]), Text(agent["task"]), str(agent["attempt"]), f"{agent['elapsed_s']:.0f} s")
        console.print(table)
    _render_problems(data["problems"], console)


def _render_problems(problems: list[str], console: Console) -> None:
    for problem in problems:
        console.print(Text(problem, style="red"), soft_wrap=True)  # one line each, also when piped


def render_tasks(rows: TaskRows, console: Console) -> None:
    if not rows:
        console.print("no tasks could be read" if rows.problems else "no tasks yet")
    else:
        root = Tree("tasks")
        nodes: dict[str | None, Tree] = {None: root}
        for row in rows:
            parent = nodes.get(row["parent"], root)
            needs = f" (needs {', '.join(row['needs'])})" if row["needs"] else ""
            label = Text.assemble((f"{row['id']} {row['status']}", STYLE[row["status"]]), f" {row['title']}{needs}")
            if row["kind"] == "plan":
                label.append(" plan", style="dim")
            nodes[row["id"]] = parent.add(label)
        console.print(root)
    _render_problems(rows.problems, console)


def render_show(data: dict[str, Any], console: Console) -> None:
    task = data["task"]
    console.print(Text.assemble((task["id"], "bold"), f" {task['title']} (",
                                (task["status"], STYLE[task["status"]]), f", {task['kind']})"))
    if task["needs"]:
        console.print(Text(f"needs: {', '.join(task['needs'])}"))
    console.print(Text(task["description"].rstrip()))
    if task.get("acceptance"):
        console.print(Text(f"done when: {task['acceptance']}"))
    for attempt in task.get("attempts", []):
        reason = f": {attempt['reason']}" if attempt.get("reason") else ""
        console.print(Text(f"attempt {attempt['number']} (cycle {attempt.get('cycle')}): {attempt['outcome']}{reason}"))
    result = task.get("result")
    if result:
        console.print(Text(f"handoff: {result['summary']}"))
        for key in ("notes", "concerns", "follow_ups"):
            for item in result.get(key, []):
                console.print(Text(f"  {key[:-1].replace('_', '-')}: {item}"))
    if data["log"]:
        console.print(Text(data["log"], style="dim"))
        for line in data["log_tail"]:
            console.print(Text(f"  {line}"), highlight=False)


def render_log(rows: list[dict[str, Any]], console: Console) -> None:
    if not rows:
        console.print("no cycle has closed yet")
        return
    table = Table("cycle", "verdict", "done", "failed", "duration", "cost", "summary", box=None)
    for row in rows:
        cost = f"${row['cost_usd']:.2f}" if row["cost_usd"] is not None else "-"
        table.add_row(str(row["cycle"]), Text(str(row["verdict"])), str(row["done"]), str(row["failed"]),
                      f"{row['duration_s']:.0f} s", cost, Text(row["summary"] or ""))
    console.print(table)
