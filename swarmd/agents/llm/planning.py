"""A planner's create_task and update_task: a task file written in its worktree exactly as swarmd writes one
(`store.dump_task`), after the checks its landing will make (`swarmd/plan_rules.py`), so the planner hears
of a problem at once instead of as a refused landing. Problems are the lines of a ValidationError; nothing is
written unless there are none.

`folder` is the worktree's `.swarm/tasks/`, already confined to the worktree by the caller; `planner` is the
planner's task id (`root` for a cycle's root planner).
"""

from __future__ import annotations

import os
import stat
from pathlib import Path
from typing import Any

from swarmd import plan_rules, yamlio
from swarmd.errors import ValidationError
from swarmd.layout import MAX_FILE_BYTES, TASKS_DIR
from swarmd.store import dump_task, parse_task, task_path
from swarmd.tasks import ID_PATTERN, Task, parent_id

FIELDS = ("title", "kind", "description", "acceptance", "needs")
_PROPERTIES: dict[str, dict[str, Any]] = {
    "id": {"type": "string", "description": "The task's id: a number directly under your own id, such as 4 for the "
           "root planner or 3.2 for the planner of 3; take the next unused one (your prompt names them)."},
    "title": {"type": "string", "description": "What the task is, in one line."},
    "kind": {"type": "string", "enum": ["work", "plan"], "description": "work: one change a worker makes; plan: "
             "a part big enough that its own planner splits it into tasks."},
    "description": {"type": "string", "description": "What to do, where and why: all that whoever takes the task "
                    "needs, who sees only the goal and this task."},
    "acceptance": {"type": "string", "description": "How to tell it is done, such as a command that must pass."},
    "needs": {"type": "array", "items": {"type": "string"}, "description": "Ids of tasks that must be done before "
              "this one starts (never its own ancestors or descendants)."},
}
# The OpenAI function-tool schemas of the two tools (`tools.specs` adds them for planners).
SPECS: list[dict[str, Any]] = [
    {"name": "create_task", "description": "Create a task under your own id, in .swarm/tasks/<id>.yaml. It is "
     "checked at once against the rules your landing will be held to: if anything is wrong, nothing is written and "
     "the answer lists every problem.",
     "parameters": {"type": "object", "properties": _PROPERTIES,
                    "required": ["id", "title", "kind", "description"], "additionalProperties": False}},
    {"name": "update_task", "description": "Change a task of yours that is still todo (one you created, or one "
     "that has not started); only the fields you give change. Checked like create_task.",
     "parameters": {"type": "object", "properties": _PROPERTIES, "required": ["id"], "additionalProperties": False}},
]


def create_task(folder: Path, planner: str, max_depth: int, fields: dict[str, Any]) -> str:
    """Write a new task from the tool's arguments (`id` and FIELDS; `parent` follows from the id)."""
    task_id = fields["id"]
    parent = parent_id(task_id) if ID_PATTERN.fullmatch(task_id) else None
    task = _task(task_id, {**fields, "parent": parent}, planner)
    tasks = read_tasks(folder)
    if task.id in tasks:
        raise ValidationError([f"{task_path(task.id)}: task {task.id} exists already; change it with update_task"])
    return _write(folder, planner, max_depth, tasks, task, "created")


def update_task(folder: Path, planner: str, max_depth: int, fields: dict[str, Any]) -> str:
    """Rewrite a task with the fields given; the others keep their values."""
    task_id = fields["id"]
    changes = {key: value for key, value in fields.items() if key != "id"}
    if not changes:
        raise ValidationError([f"update_task {task_id}: nothing to change; give at least one of {', '.join(FIELDS)}"])
    tasks = read_tasks(folder)
    existing = tasks.get(task_id)
    if existing is None:
        raise ValidationError([f"{task_path(task_id)}: there is no task {task_id!r}; create it with create_task"])
    task = _task(task_id, {**existing.model_dump(mode="json"), **changes}, planner)
    return _write(folder, planner, max_depth, tasks, task, "updated")


def read_tasks(folder: Path) -> dict[str, Task]:
    """The tasks in the worktree's task files, by id. A file that cannot be read as a task (a symlink, too
    big, not a task) is left out: it is not the planner's to fix here, and landing judges it. A folder that
    cannot be listed is a ValidationError."""
    try:
        names = sorted(os.listdir(folder))
    except FileNotFoundError:
        return {}
    except OSError as exc:  # a file where the folder should be, a folder the agent may not read
        raise ValidationError([f"{TASKS_DIR}: cannot read it: {exc.strerror}"]) from None
    tasks: dict[str, Task] = {}
    for name in names:
        if not name.endswith(".yaml"):
            continue
        data = _read_regular(folder / name)
        if data is None:
            continue
        try:
            task = parse_task(data, f"{TASKS_DIR}/{name}")
        except ValidationError:
            continue
        if name == f"{task.id}.yaml":
            tasks[task.id] = task
    return tasks


def _task(task_id: str, data: dict[str, Any], planner: str) -> Task:
    """The task the fields make; if they make none, every problem, the id's own among them."""
    if data.get("acceptance") == "":
        data["acceptance"] = None
    try:
        return yamlio.parse(Task, data, task_path(task_id))
    except ValidationError as exc:
        owner = plan_rules.owner_of(planner)
        mine = plan_rules.id_problem(task_path(task_id), task_id, owner) if ID_PATTERN.fullmatch(task_id) else None
        raise ValidationError(([mine] if mine else []) + exc.problems) from None


def _write(folder: Path, planner: str, max_depth: int, tasks: dict[str, Task], task: Task, verb: str) -> str:
    path = task_path(task.id)
    problem = plan_rules.task_problem(path, task, plan_rules.owner_of(planner), max_depth)
    merged = plan_rules.merge(tasks, {task.id: task}, max_depth)
    problems = ([problem] if problem else []) + merged.problems
    if problems:
        raise ValidationError(problems)
    data = dump_task(merged.written[task.id])
    try:
        folder.mkdir(parents=True, exist_ok=True)
        fd = os.open(folder / f"{task.id}.yaml", os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_NOFOLLOW, 0o644)
        with os.fdopen(fd, "wb") as out:
            out.write(data)
    except OSError as exc:
        raise ValidationError([f"{path}: could not write it: {exc.strerror}"]) from None
    return f"{verb} {path}:\n{data.decode()}"


def _read_regular(path: Path) -> bytes | None:
    """The bytes of a regular file of at most MAX_FILE_BYTES, never through a symlink; None otherwise."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK)
    except OSError:
        return None
    try:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode) or info.st_size > MAX_FILE_BYTES:
            return None
        chunks = []
        while chunk := os.read(fd, MAX_FILE_BYTES):
            chunks.append(chunk)
        return b"".join(chunks)
    finally:
        os.close(fd)
