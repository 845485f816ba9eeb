"""Case (d): one `.swarm/tasks/<id>.yaml` commit with its compare-and-swap, `commit_changes` against a full
pygit2 `Index` (read the tip's tree, add the blob, write_tree, commit, compare-and-swap)."""

from __future__ import annotations

import time

import pygit2

from gitbench.bench import SIG, Bench, done
from gitbench.timing import Samples, ms_since, rotate

from swarmd.git.landing import commit_changes
from swarmd.store import dump_task, task_path
from swarmd.tasks import Task


def case_d(b: Bench, base: str, tasks: list[Task], reps: int, s: Samples) -> None:
    methods = ["swarmd", "full index"]
    for name in methods:
        b.set_ref(f"refs/heads/bench/d/{methods.index(name)}", base)
    work = iter(tasks[1:])
    for rep in range(reps + 1):
        for name in rotate(methods, rep):
            branch = f"bench/d/{methods.index(name)}"
            task = next(work)
            path, data = task_path(task.id), dump_task(done(task))
            old = b.repo.branch_tip(branch)
            message = f"task {task.id}: done"
            start = time.perf_counter()
            if name == "swarmd":
                commit_changes(b.daemon, branch, lambda tip: {path: data}, message)
            else:
                raw = b.daemon.raw
                ref = raw.references.get(f"refs/heads/{branch}")
                parent = raw[ref.target].peel(pygit2.Commit)
                index = pygit2.Index()
                index.read_tree(parent.tree)
                index.add(pygit2.IndexEntry(path, raw.create_blob(data), pygit2.enums.FileMode.BLOB))
                tree = index.write_tree(raw)
                new = raw.create_commit(None, SIG, SIG, message, tree, [parent.id])
                ref.set_target(new, message)
            elapsed = ms_since(start)
            new = b.raw[b.repo.branch_tip(branch)]
            assert str(new.parent_ids[0]) == old and new.tree[path].data == data, f"{name}: wrong commit"
            assert str(new.tree_id) == b.expected_tree(old, {path: data}), f"{name}: wrong tree"
            if rep:
                s.add(f"d/{name}", elapsed)
