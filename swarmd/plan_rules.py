"""What a planner may propose: the rules on its task files that its landing is held to
(`daemon/integrate.py`) and that the built-in agent's `create_task` and `update_task` check before they
write anything (`agents/llm/planning.py`), so both say the same thing in the same words.

Pure: no I/O. `owner` is the planner's own task id, None for a cycle's root planner.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from swarmd.store import task_path
from swarmd.tasks import RESERVED_ROOT, ROOT, Kind, Status, Task, parent_id, validate_tree


def owner_of(planner: str) -> str | None:
    """The id a planner creates tasks under: its own, or None (top level) for the root planner."""
    return None if planner == ROOT else planner


def task_problem(path: str, task: Task, owner: str | None, max_depth: int) -> str | None:
    """What is wrong with one proposed task file on its own, or None: its name, whose id it takes, and a
    plan task too deep to ever have tasks of its own."""
    name = path.rpartition("/")[2]
    if name != f"{task.id}.yaml":
        return f"{path}: field `id`: the file of task {task.id!r} must be named {task.id}.yaml"
    problem = id_problem(path, task.id, owner)
    if problem:
        return problem
    if task.kind is Kind.PLAN and task.id.count(".") + 1 >= max_depth:
        return (f"{path}: field `kind`: a plan task at depth {max_depth} could never have tasks "
                f"(limits.depth is {max_depth}); make it a work task")
    return None


def id_problem(path: str, task_id: str, owner: str | None) -> str | None:
    """Whether the id is one this planner may create: directly under its own, and never the reserved 0."""
    if parent_id(task_id) != owner or task_id == RESERVED_ROOT:
        mine = f"{owner}.N" if owner else "N (top level, not 0)"
        return f"{path}: field `id`: {task_id!r} is not yours to create; your ids are {mine}"
    return None


@dataclass
class Merged:
    """Proposed tasks put into a tree: each as it will be written, the ids new to the tree, and every
    problem (none when the proposal may land)."""

    written: dict[str, Task] = field(default_factory=dict)
    added: set[str] = field(default_factory=set)
    problems: list[str] = field(default_factory=list)


def merge(tree: dict[str, Task], proposed: dict[str, Task], max_depth: int) -> Merged:
    """Put a planner's tasks (each already past `task_problem`) into the tree they would land on: a new
    task starts as todo without attempts or result; an existing one may be rewritten only while it is
    todo, and keeps its attempts; then the tree rules (`validate_tree`) for the problems they cause."""
    tasks = dict(tree)
    merged = Merged()
    for task_id, task in proposed.items():
        path = task_path(task_id)
        existing = tasks.get(task_id)
        if existing is None:
            if task.status is not Status.TODO or task.attempts or task.result:
                merged.problems.append(f"{path}: field `status`: a new task starts as todo, without attempts or result")
                continue
            merged.added.add(task_id)
        elif existing.status is not Status.TODO:
            merged.problems.append(f"{path}: task {task_id} is {existing.status}; only todo tasks may be changed")
            continue
        else:
            task = task.model_copy(update={"status": Status.TODO, "attempts": existing.attempts})
        tasks[task_id] = task
        merged.written[task_id] = task
    sources = {task_id: task_path(task_id) for task_id in tasks}
    merged.problems += [p for p in validate_tree(tasks, sources, max_depth) if _about(p, proposed)]
    return merged


def _about(problem: str, proposed: dict[str, Task]) -> bool:
    """Problems of the tree that the planner's tasks cause (a problem elsewhere is not theirs to fix)."""
    return any(problem.startswith(task_path(task_id) + ":") for task_id in proposed) or "loop" in problem
