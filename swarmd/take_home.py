"""`swarmd merge`: what the swarm landed, merged into the person's checked-out branch without the swarm's
bookkeeping under `.swarm/` (ADR 0017).

One commit is built in memory (`git/export.py`): the integration tip with `.swarm/` as HEAD has it. Then
`git merge --no-ff` of that commit runs in the working tree, as the person, so git's own rules apply to
their local changes and to conflicts. Their `.swarm/` files, tracked or not, are never touched.

Exit status: 0 merged, or nothing to merge; 2 refused before git ran (detached HEAD, on the integration
branch, no integration branch, an operation in progress); 1 git merge stopped on conflicts (the merge is
left in progress) or refused (nothing changed).
"""

from __future__ import annotations

from pathlib import Path

from swarmd.config import load_config
from swarmd.errors import SwarmError, UsageError
from swarmd.git.export import export_commit
from swarmd.git.merge import merge_commits
from swarmd.git.repo import Repo
from swarmd.git.user_merge import head_branch, merge_into_head, operation_in_progress
from swarmd.layout import SWARM_DIR

MAX_NAMED = 10  # conflicted paths named in the one-line error; the rest are counted


def take_home(start: Path) -> str:
    repo = Repo.discover(start)
    branch = load_config(repo.workdir).integration.branch
    ours, tip = _refusals(repo, branch)
    head = repo.head_commit()
    nothing = f"nothing to merge: {ours} already has everything {branch} landed (at {tip[:10]})"
    if repo.is_ancestor(tip, head):
        return nothing
    export = export_commit(repo, branch, tip, head, SWARM_DIR)
    # The swarm may have landed only bookkeeping since the last merge: a merge commit would change nothing.
    preview = merge_commits(repo, head, export)
    if preview.clean and preview.tree == str(repo.commit(head).tree_id):
        return nothing
    done = merge_into_head(repo, export, f"Merge the swarm's work ({branch} at {tip[:10]})")
    if done.commit is not None:
        count = len(repo.changed_files(head, done.commit))
        files = "1 file" if count == 1 else f"{count} files"
        return (
            f"merged {branch} at {tip[:10]} into {ours}: {done.commit[:10]}, {files} changed "
            f"({SWARM_DIR}/ left as it was)"
        )
    if done.conflicts:
        raise SwarmError(
            f"merging {branch} into {ours} stopped on conflicts in {_named(done.conflicts)}: "
            "resolve them and `git commit`, or `git merge --abort`"
        )
    if done.in_progress:
        raise SwarmError(
            f"git merge of {branch} stopped before committing: {done.output}; "
            "fix that and `git commit`, or `git merge --abort`"
        )
    raise SwarmError(f"git merge of {branch} refused, nothing changed: {done.output}")


def _refusals(repo: Repo, branch: str) -> tuple[str, str]:
    """The checked-out branch and the integration tip, or a UsageError saying what to do first."""
    busy = operation_in_progress(repo)
    if busy is not None:
        how = "`git commit` or `git merge --abort`" if busy == "a merge" else "what `git status` suggests"
        raise UsageError(
            f"{busy} is in progress in {repo.workdir}; finish or abort it ({how}), then run `swarmd merge` again"
        )
    ours = head_branch(repo)
    if ours is None:
        raise UsageError(
            f"HEAD is detached at {repo.head_commit()[:10]}; switch to the branch to merge into "
            "(`git switch <branch>`), then run `swarmd merge`"
        )
    if ours == branch:
        raise UsageError(
            f"{branch} is the integration branch itself; switch to your own branch (`git switch <branch>`), "
            "then run `swarmd merge` there"
        )
    tip = repo.branch_tip(branch)
    if tip is None:
        raise UsageError(
            f"there is no branch {branch} (integration.branch in .swarm/config.yaml); run `swarmd init` "
            "and `swarmd start` first"
        )
    return ours, tip


def _named(paths: tuple[str, ...]) -> str:
    named = ", ".join(paths[:MAX_NAMED])
    return named if len(paths) <= MAX_NAMED else f"{named} and {len(paths) - MAX_NAMED} more"
