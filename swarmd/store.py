"""The task tree and cycle records as files under `.swarm/` on the integration branch.

Read straight from git objects at any commit (no checkout); written as a set of file changes that the
git layer commits with a compare-and-swap. Only the files of tasks that changed are rewritten, so an
untouched file keeps its bytes, and a dump of a loaded task gives the same bytes back.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from swarmd import yamlio
from swarmd.errors import ValidationError
from swarmd.git.repo import Repo
from swarmd.layout import CYCLES_DIR, TASKS_DIR
from swarmd.tasks import Cycle, Task, validate_tree


# Shown even when empty, because the agent contract names them; the rest appear once they hold something.
_ALWAYS_SHOWN = ("id", "title", "kind", "status", "parent", "needs", "description")


def task_path(task_id: str) -> str:
    return f"{TASKS_DIR}/{task_id}.yaml"


def cycle_path(number: int) -> str:
    return f"{CYCLES_DIR}/{number:04d}.yaml"


def dump_task(task: Task) -> bytes:
    data = task.model_dump(mode="json")
    shown = {key: value for key, value in data.items() if key in _ALWAYS_SHOWN or not _empty(value)}
    return yamlio.dump(_prune(shown, keep=_ALWAYS_SHOWN)).encode()


def parse_task(text: bytes | str, source: str) -> Task:
    return yamlio.load_model(Task, text, source, numbers=False)


def dump_cycle(cycle: Cycle) -> bytes:
    return yamlio.dump(_prune(cycle.model_dump(mode="json"), keep=("number", "verdict", "summary"))).encode()


def parse_cycle(text: bytes | str, source: str) -> Cycle:
    return yamlio.load_model(Cycle, text, source)


@dataclass
class TaskTree:
    """The tasks at one commit, and every problem found reading them (empty when the tree is valid)."""

    commit: str
    tasks: dict[str, Task] = field(default_factory=dict)
    problems: list[str] = field(default_factory=list)


Parsed = dict[str, "Task | ValidationError"]  # blob id -> the task parsed from it, or why it does not parse


def read_tree(repo: Repo, commit: str, max_depth: int | None = None, cache: Parsed | None = None) -> TaskTree:
    """All tasks at a commit. Pass the same `cache` to repeated reads, and only the files that changed
    since are parsed again; it keeps the tasks of the last tree read, and those read since."""
    tree = TaskTree(commit)
    sources: dict[str, str] = {}
    cache = {} if cache is None else cache
    blobs = repo.folder_blobs(commit, TASKS_DIR)
    if len(cache) > 2 * len(blobs) + 256:
        for stale in cache.keys() - set(blobs.values()):
            del cache[stale]
    for name, blob in sorted(blobs.items()):
        source = f"{TASKS_DIR}/{name}"
        if not name.endswith(".yaml"):
            tree.problems.append(f"{source}: not a task file; task files are named <id>.yaml")
            continue
        task = _parsed(repo, blob, source, cache)
        if isinstance(task, ValidationError):
            tree.problems.extend(p.replace(p.partition(":")[0], source, 1) for p in task.problems)
            continue
        if name != f"{task.id}.yaml":
            tree.problems.append(f"{source}: field `id`: the file of task {task.id!r} must be named {task.id}.yaml")
            continue
        tree.tasks[task.id] = task
        sources[task.id] = source
    tree.problems.extend(validate_tree(tree.tasks, sources, max_depth))
    return tree


def read_task(repo: Repo, commit: str, task_id: str, cache: Parsed | None = None) -> Task | None:
    """One task at a commit; None if it has no file there. Raises ValidationError if it does not parse."""
    source = task_path(task_id)
    blob = repo.blob_id(commit, source)
    if blob is None:
        return None
    task = _parsed(repo, blob, source, {} if cache is None else cache)
    if isinstance(task, ValidationError):
        raise ValidationError(task.problems) from None
    return task


def _parsed(repo: Repo, blob: str, source: str, cache: Parsed) -> Task | ValidationError:
    if blob not in cache:
        try:
            cache[blob] = parse_task(repo.read_blob(blob), source)
        except ValidationError as exc:
            cache[blob] = exc
    return cache[blob]


def latest_cycle(repo: Repo, commit: str) -> Cycle | None:
    """The newest cycle record at a commit: the open cycle, or the last one the judge closed."""
    names = sorted(n for n in repo.folder_blobs(commit, CYCLES_DIR) if n.endswith(".yaml"))
    if not names:
        return None
    source = f"{CYCLES_DIR}/{names[-1]}"
    return parse_cycle(repo.read_file(commit, source) or b"", source)


def read_cycles(repo: Repo, commit: str) -> tuple[list[Cycle], list[str]]:
    """The cycle records at a commit in order, and the problems of any that do not parse."""
    cycles, problems = [], []
    for name, data in sorted(repo.read_folder(commit, CYCLES_DIR).items()):
        source = f"{CYCLES_DIR}/{name}"
        try:
            cycle = parse_cycle(data, source)
        except ValidationError as exc:
            problems.extend(exc.problems)
            continue
        if name != f"{cycle.number:04d}.yaml":
            problems.append(f"{source}: field `number`: cycle {cycle.number} must be in {cycle.number:04d}.yaml")
            continue
        cycles.append(cycle)
    return cycles, problems


def _empty(value: Any) -> bool:
    return value is None or value == [] or value == {}


def _prune(data: Any, keep: tuple[str, ...] = ()) -> Any:
    """Drop empty values below the top level, so a dump shows only what a task holds."""
    if isinstance(data, dict):
        return {k: _prune(v) for k, v in data.items() if k in keep or not _empty(v)}
    if isinstance(data, list):
        return [_prune(item) for item in data]
    return data
