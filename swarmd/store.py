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
from swarmd.git.repo import Repo, entry_kind
from swarmd.layout import CYCLES_DIR, MAX_FILE_BYTES, TASKS_DIR
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


def task_entry_problem(repo: Repo, path: str, blob_id: str, mode: int) -> str | None:
    """What is wrong with the tree entry of a task file, found before reading it, or None: it must be a
    regular file (not a symlink, a folder or a submodule) of at most `MAX_FILE_BYTES`, a size read from
    the object's header without loading it. Every reader of task files on a branch checks this first."""
    return _entry_problem(repo, path, blob_id, mode, "task file")


def read_tree(repo: Repo, commit: str, max_depth: int | None = None, cache: Parsed | None = None) -> TaskTree:
    """All tasks at a commit; an entry that is not a task file that can be read is a problem, left out.
    Pass the same `cache` to repeated reads, and only the files that changed since are parsed again; it
    keeps the tasks of the last tree read, and those read since."""
    tree = TaskTree(commit)
    sources: dict[str, str] = {}
    cache = {} if cache is None else cache
    entries = repo.folder_entries(commit, TASKS_DIR)
    if len(cache) > 2 * len(entries) + 256:
        for stale in cache.keys() - {blob for blob, _ in entries.values()}:
            del cache[stale]
    for name, (blob, mode) in sorted(entries.items()):
        source = f"{TASKS_DIR}/{name}"
        problem = _kind_problem(source, mode, "task file")
        if problem is None and not name.endswith(".yaml"):
            problem = f"{source}: not a task file; task files are named <id>.yaml"
        if problem is not None:
            tree.problems.append(problem)
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
    """One task at a commit; None if nothing is at its path there. Raises ValidationError if what is
    there is not a task file that can be read, or does not parse."""
    source = task_path(task_id)
    found = repo.entry(commit, source)
    if found is None:
        return None
    blob, mode = found
    problem = _kind_problem(source, mode, "task file")
    if problem is not None:
        raise ValidationError([problem])
    task = _parsed(repo, blob, source, {} if cache is None else cache)
    if isinstance(task, ValidationError):
        raise ValidationError(task.problems) from None
    return task


def _parsed(repo: Repo, blob: str, source: str, cache: Parsed) -> Task | ValidationError:
    """The task in a regular file's blob, parsed once per blob: the size limit is the blob's, checked here."""
    if blob not in cache:
        problem = _size_problem(repo, source, blob, "task file")
        try:
            if problem is not None:
                raise ValidationError([problem])
            cache[blob] = parse_task(repo.read_blob(blob), source)
        except ValidationError as exc:
            cache[blob] = exc
    return cache[blob]


def _entry_problem(repo: Repo, path: str, blob: str, mode: int, what: str) -> str | None:
    return _kind_problem(path, mode, what) or _size_problem(repo, path, blob, what)


def _kind_problem(path: str, mode: int, what: str) -> str | None:
    kind = entry_kind(mode)
    return None if kind == "file" else f"{path}: a {kind}; a {what} must be a regular file"


def _size_problem(repo: Repo, path: str, blob: str, what: str) -> str | None:
    size = repo.object_size(blob)
    if size <= MAX_FILE_BYTES:
        return None
    return f"{path}: {size:,} bytes, over the {MAX_FILE_BYTES:,}-byte limit for a {what}"


def latest_cycle(repo: Repo, commit: str) -> Cycle | None:
    """The newest cycle record at a commit: the open cycle, or the last one the judge closed. Raises
    ValidationError if it is not a file that can be read, or does not parse."""
    entries = repo.folder_entries(commit, CYCLES_DIR)
    names = sorted(n for n in entries if n.endswith(".yaml"))
    if not names:
        return None
    source = f"{CYCLES_DIR}/{names[-1]}"
    blob, mode = entries[names[-1]]
    problem = _entry_problem(repo, source, blob, mode, "cycle record")
    if problem is not None:
        raise ValidationError([problem])
    return parse_cycle(repo.read_blob(blob), source)


def read_cycles(repo: Repo, commit: str) -> tuple[list[Cycle], list[str]]:
    """The cycle records at a commit in order, and the problems of any that cannot be read or parsed."""
    cycles, problems = [], []
    for name, (blob, mode) in sorted(repo.folder_entries(commit, CYCLES_DIR).items()):
        source = f"{CYCLES_DIR}/{name}"
        problem = _entry_problem(repo, source, blob, mode, "cycle record")
        if problem is not None:
            problems.append(problem)
            continue
        try:
            cycle = parse_cycle(repo.read_blob(blob), source)
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
