"""The generated repository with untimed helpers to prepare each case (commits made directly with pygit2,
files no earlier step has changed), and the task tree whose tasks the cases commit and land."""

from __future__ import annotations

import random
from dataclasses import dataclass
from pathlib import Path

import pygit2

from swarmd.git.repo import Repo
from swarmd.git.trees import apply_changes
from swarmd.tasks import Kind, Result, Status, Task, transition

SIG = pygit2.Signature("Bench Person", "bench@example.com")


class Bench:
    """The generated repository, and untimed helpers to prepare each case."""

    def __init__(self, path: Path, files: list[str], seed: int) -> None:
        self.path = path
        self.repo = Repo.at(path)  # for preparing and checking, untimed
        self.raw = self.repo.raw
        self.daemon = Repo.at(path)  # the long-lived Repo that swarmd's timed calls use; it never prepares anything
        self.main = str(self.raw.references["refs/heads/main"].target)
        self.rng = random.Random(seed + 1)
        self.unused = [name for name in files if name not in (".gitignore", "README.md")]
        self.rng.shuffle(self.unused)
        self.changes = 0

    def pick(self) -> str:
        """A tracked file no earlier step has changed, so prepared changes never overlap."""
        return self.unused.pop()

    def changed(self, commit: str, path: str) -> bytes:
        self.changes += 1
        old = self.raw.revparse_single(f"{commit}:{path}").data
        return old + f"# change {self.changes}\n".encode()

    def commit(self, parent: str, changes: dict[str, bytes | None], message: str) -> str:
        base = self.raw[parent].peel(pygit2.Commit)
        tree = apply_changes(self.raw, base.tree_id, changes)
        return str(self.raw.create_commit(None, SIG, SIG, message, tree, [base.id]))

    def change_files(self, parent: str, count: int, message: str) -> tuple[str, dict[str, bytes | None]]:
        changes: dict[str, bytes | None] = {}
        for _ in range(count):
            name = self.pick()
            changes[name] = self.changed(parent, name)
        return self.commit(parent, changes, message), changes

    def set_ref(self, name: str, commit: str) -> None:
        self.raw.references.create(name, pygit2.Oid(hex=commit), force=True)

    def expected_tree(self, onto: str, changes: dict[str, bytes | None]) -> str:
        return str(apply_changes(self.raw, self.raw[onto].peel(pygit2.Commit).tree_id, changes))


def make_tasks(count: int) -> list[Task]:
    plan = Task(id="1", title="benchmark plan", kind=Kind.PLAN, status=Status.RUNNING, parent=None)
    work = [
        Task(id=f"1.{k}", title=f"change number {k}", kind=Kind.WORK, status=Status.RUNNING, parent="1",
             description=f"Change one file and land it (task {k} of {count}).")
        for k in range(1, count + 1)
    ]
    return [plan, *work]


def done(task: Task) -> Task:
    return transition(task, Status.DONE).model_copy(update={"result": Result(summary=f"landed task {task.id}")})


@dataclass(frozen=True)
class Job:
    """One prepared branch of case (e), with the task its landing turns `done`."""

    head: str  # the branch's commit
    fork: str  # the integration tip it started from (the daemon knows it: the tip it handed the agent)
    task: Task  # the task, still running; the landing turns it done
    changed: str  # the one file the branch changed
