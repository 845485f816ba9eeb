"""The report: the machine the figures come from, what exactly is timed in each case, and the table of
swarmd against its baselines, each ratio held to its target."""

from __future__ import annotations

import os
import platform

import pygit2

from gitbench.timing import Samples
from hostinfo import cpu_model, git_version


def machine() -> str:
    return (f"{os.cpu_count()} cores ({len(os.sched_getaffinity(0))} usable), {cpu_model()}; {platform.system()} "
            f"{platform.release()}; Python {platform.python_version()}; {git_version()}; pygit2 {pygit2.__version__}, "
            f"libgit2 {pygit2.LIBGIT2_VERSION}")


def report(s: Samples, landings: int, writers: int) -> list[str]:
    rows = []

    def row(case: str, ours: str, theirs: str | None, target: float | None, extra_ok: bool = True) -> None:
        a, b = s.med(ours), s.med(theirs) if theirs else None
        ratio = b / a if b is not None else None
        met = "" if target is None else ("yes" if ratio is not None and ratio >= target and extra_ok else "NO")
        rows.append((case, f"{a:.2f}", f"{b:.2f}" if b is not None else "-",
                     f"{ratio:.1f}x" if ratio is not None else "-",
                     f">= {target:g}x" if target is not None else "(info)", met))

    row("(a) land 1-file branch vs git merge in a kept worktree", "a/swarmd", "a/git merge in a worktree", 50)
    row("(a) land 1-file branch vs merge-tree + commit-tree + update-ref", "a/swarmd", "a/git merge-tree route", 1)
    row("(a) same, swarmd opening the repository per landing", "a/swarmd, repository opened per landing",
        "a/git merge-tree route", None)
    row("(b) replay 3 commits + ref CAS vs git rebase in a worktree", "b/swarmd", "b/git rebase in a worktree", 20)
    row("(c) pool acquire (reused worktree) vs git worktree add", "c/swarmd acquire", "c/git worktree add", 10)
    row("(c) pool release, off the request path", "c/swarmd release", "c/git worktree add", None)
    row("(c) pool release + acquire, whole cost", "c/swarmd release + acquire", "c/git worktree add", None)
    row("(d) .swarm task commit + CAS vs full pygit2 Index", "d/swarmd", "d/full index", 3)
    no_loss = s.values["e/swarmd/lost"] == [0.0] and s.values["e/cli/lost"] == [0.0]
    rate_ours, rate_theirs = 1000 / s.med("e/swarmd"), 1000 / s.med("e/cli")
    row(f"(e) ms per landing, {landings} landings, {writers} writers "
        f"({rate_ours:.0f} vs {rate_theirs:.0f} landings/s), none lost", "e/swarmd", "e/cli", 5, no_loss)
    widths = [max(len(r[i]) for r in rows + [HEADER]) for i in range(len(HEADER))]
    fmt = lambda r: " | ".join(c.ljust(w) if i == 0 else c.rjust(w) for i, (c, w) in enumerate(zip(r, widths)))  # noqa: E731
    return [fmt(HEADER), "-+-".join("-" * w for w in widths), *[fmt(r) for r in rows]]


HEADER = ("case", "swarmd ms", "baseline ms", "ratio", "target", "met")
TIMED = """what is timed (the git commands run from Python with subprocess, as a Python tool would run them):
  (a) swarmd: land_branch(repo, branch, head, base=<where it started>) on a long-lived Repo: reads the tip, merges, commits, set_target (CAS).
      merge-tree route: merge-tree --write-tree <tip> <head>; commit-tree -p <tip> -p <head>; update-ref <ref> <new> <tip>
      (the tip is handed to it: no rev-parse). worktree route: in a kept worktree, reset -q --hard <tip>;
      merge -q --no-edit <head>; update-ref <ref> HEAD <tip>.
  (b) swarmd: commits_to_replay + replay + set_target (CAS) of the branch. git: rebase -q <tip> in a worktree that has
      the branch checked out (the checkout of the branch is not timed).
  (c) swarmd: WorktreePool.acquire(new branch, start=<tip>) of the worktree a finished task gave back with release
      (2 commits on its branch, 41 ignored build files, 1 stray untracked file; the tip 3 commits further).
      git: worktree add -q -b <branch> <new folder> <tip> (the disk is flushed with sync before each).
  (d) swarmd: commit_changes(repo, branch, build) writing .swarm/tasks/<id>.yaml. Index: pygit2.Index().read_tree(tip
      tree), add the blob, write_tree, create_commit, set_target (CAS).
  (e) each landing: the merge of the branch and its task YAML turned done (dump_task) in one commit, CAS onto one
      branch, lost races retried; land_branch calls its build callback (dump_task) on every try, the CLI route dumps
      once per landing. Each route has its own branch and 4 writer processes that live through the whole case; the
      branches are landed in 5 rounds, the routes taking turns round by round (never at the same time), so a change
      in the machine's load falls on both. Wall time = the sum of the rounds, from the first writer's start to the
      last writer's end. The repository has gc.auto=0: no git command packs objects during a case."""
