"""Cases (a) and (b): integrating a task branch into an integration tip that moved, by merging a one-file
branch (`land_branch` against `git merge` in a kept worktree and the `git merge-tree` route) and by
replaying a 3-commit branch (`commits_to_replay` + `replay` against `git rebase` in a worktree)."""

from __future__ import annotations

import time

import pygit2

from gitbench.bench import Bench
from gitbench.timing import Samples, ms_since, quiet_disk, rotate
from gitcmd import git

from swarmd.git.landing import land_branch
from swarmd.git.replay import commits_to_replay, replay
from swarmd.git.repo import Repo


# -- (a) integrate a one-file branch into a tip that moved --------------------------------------


def case_a(b: Bench, reps: int, slow: int, s: Samples) -> None:
    wt = b.path.parent / "kept-merge-worktree"
    git(b.path, "worktree", "add", "-q", "--detach", str(wt), b.main)
    quiet_disk()
    methods = ["swarmd", "swarmd, repository opened per landing", "git merge-tree route", "git merge in a worktree"]
    for rep in range(reps + 1):  # the first round warms up and is not counted
        for name in rotate(methods, rep):
            if name == "git merge in a worktree" and rep > slow:
                continue
            branch = f"bench/a/{rep}/{methods.index(name)}"
            head, head_changes = b.change_files(b.main, 1, "one-file task branch")
            tip, _ = b.change_files(b.main, 1, "the tip moved")
            b.set_ref(f"refs/heads/{branch}", tip)
            expected = b.expected_tree(tip, head_changes)
            message = f"land {head[:8]}"
            start = time.perf_counter()
            if name == "swarmd":
                land_branch(b.daemon, branch, head, message=message, base=b.main)
            elif name == "swarmd, repository opened per landing":
                land_branch(Repo.at(b.path), branch, head, message=message, base=b.main)
            elif name == "git merge-tree route":
                tree = git(b.path, "merge-tree", "--write-tree", tip, head).splitlines()[0]
                new = git(b.path, "commit-tree", tree, "-p", tip, "-p", head, "-m", message)
                git(b.path, "update-ref", f"refs/heads/{branch}", new, tip)
            else:
                git(wt, "reset", "-q", "--hard", tip)
                git(wt, "merge", "-q", "--no-edit", "-m", message, head)
                git(wt, "update-ref", f"refs/heads/{branch}", "HEAD", tip)
            elapsed = ms_since(start)
            commit = b.raw[b.repo.branch_tip(branch)]
            assert [str(p) for p in commit.parent_ids] == [tip, head], (name, commit.parent_ids)
            assert str(commit.tree_id) == expected, f"{name}: wrong tree"
            if rep:
                s.add(f"a/{name}", elapsed)


# -- (b) replay a 3-commit branch onto a moved tip ----------------------------------------------


def case_b(b: Bench, reps: int, slow: int, s: Samples) -> None:
    wt = b.path.parent / "kept-rebase-worktree"
    git(b.path, "worktree", "add", "-q", "--detach", str(wt), b.main)
    quiet_disk()
    methods = ["swarmd", "git rebase in a worktree"]
    for rep in range(reps + 1):
        for name in rotate(methods, rep):
            if name == "git rebase in a worktree" and rep > slow:
                continue
            ref = f"refs/heads/bench/b/{rep}/{methods.index(name)}"
            first, third = b.pick(), b.pick()
            new_file = f"{first.rpartition('/')[0]}/added_{rep}_{methods.index(name)}.py"
            c1 = b.commit(b.main, {first: b.changed(b.main, first)}, "step 1: change a file")
            c2 = b.commit(c1, {new_file: b"def added():\n    return 1\n"}, "step 2: add a file")
            changes = {first: b.changed(c2, first) + b"# again\n", third: b.changed(c2, third)}
            head = b.commit(c2, changes, "step 3: change two files")
            b.set_ref(ref, head)
            t1, _ = b.change_files(b.main, 1, "the tip moved")
            tip, _ = b.change_files(t1, 1, "the tip moved again")
            final = {path: b.raw.revparse_single(f"{head}:{path}").data for path in (first, new_file, third)}
            expected = b.expected_tree(tip, final)
            if name == "git rebase in a worktree":
                git(wt, "checkout", "-q", "-f", ref.removeprefix("refs/heads/"))
            start = time.perf_counter()
            if name == "swarmd":
                commits = commits_to_replay(b.daemon, head, tip)
                replayed = replay(b.daemon, commits, tip)
                branch = b.daemon.raw.references.get(ref)
                assert str(branch.target) == head, "the branch moved: a real caller would start again"
                branch.set_target(pygit2.Oid(hex=replayed.head), "swarmd: replay")
            else:
                git(wt, "rebase", "-q", tip)
            elapsed = ms_since(start)
            new = b.raw[b.repo.ref_target(ref)]
            assert str(new.tree_id) == expected, f"{name}: wrong tree"
            chain = [new, new.parents[0], new.parents[0].parents[0]]
            assert str(chain[2].parent_ids[0]) == tip, f"{name}: not 3 commits on the tip"
            if rep:
                s.add(f"b/{name}", elapsed)
