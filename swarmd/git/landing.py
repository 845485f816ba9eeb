"""Moving the integration branch: every update is a compare-and-swap, and a writer that lost the race
rebuilds on the new tip and tries again. No lock is taken and no update is lost.

`Reference.set_target` refuses when the ref moved since it was looked up (a GitError "old reference
value does not match", or an OSError while another writer holds the `.lock`): that is the swap.
"""

from __future__ import annotations

from collections.abc import Callable
import re
import time
from dataclasses import dataclass

import pygit2

from swarmd import failpoints
from swarmd.errors import GitError
from swarmd.git.merge import merge_commits
from swarmd.git.replay import commits_to_replay, replay
from swarmd.git.repo import Repo
from swarmd.git.trees import Changes, apply_changes, changed_paths

MAX_TRIES = 10_000  # each lost race means another writer landed, so the swarm as a whole progresses
LOCK_PATIENCE_S = 5.0


@dataclass(frozen=True)
class Landed:
    commit: str | None  # the new tip; None when there was nothing to write, on a conflict, or refused
    conflicts: tuple[str, ...] = ()
    tries: int = 1
    refused: str | None = None  # why a clean merge was not written (conflict markers in it)


def start_branch(repo: Repo, branch: str, base: str, changes: Changes, message: str) -> str:
    """Create `branch` with one commit of `changes` on top of `base`: the commit exists before the
    branch does, so a crash leaves either no branch or a whole one."""
    base_commit = repo.commit(base)
    tree = apply_changes(repo.raw, base_commit.tree_id, changes)
    sig = repo.signature()
    commit = str(repo.raw.create_commit(None, sig, sig, message, tree, [base_commit.id]))
    repo.create_branch(branch, commit)
    return commit


Guard = Callable[[str], None]  # sees every tip a write is about to build on; raises to stop the write


def commit_changes(
    repo: Repo, branch: str, build: Callable[[str], Changes | None], message: str, kind: str = "commit",
    guard: Guard | None = None,
) -> Landed:
    """Commit `build(tip)` onto `branch`. `build` is called again on the new tip after a lost race;
    returning None means there is nothing to do at that tip. `kind` names the failpoints on the way."""

    def attempt(tip: str) -> pygit2.Oid | None:
        changes = build(tip)
        if not changes:
            return None
        tip_commit = repo.commit(tip)
        tree = apply_changes(repo.raw, tip_commit.tree_id, changes)
        if tree == tip_commit.tree_id:
            return None
        sig = repo.signature()
        return repo.raw.create_commit(None, sig, sig, message, tree, [tip_commit.id])

    return _swap_loop(repo, branch, attempt, f"swarmd: {_subject(message)}", kind, guard)


def land_branch(
    repo: Repo,
    branch: str,
    head: str,
    *,
    message: str,
    replay_commits: bool = False,
    build: Callable[[str], Changes | None] = lambda tip: None,
    base: str | None = None,
    guard: Guard | None = None,
) -> Landed:
    """Integrate commit `head` into `branch` in memory, with `build(tip)` in the same commit.

    `base` is where the branch started (or the tip it last merged): a commit of the integration
    branch that `head` descends from. Given, no history walk is needed (they grow slow as history
    grows, and a lost race would repeat them); it is checked with a short walk down from `head`.

    Merge style (default): one commit whose parents are the tip and `head`. Replay style: `head`'s
    commits are replayed onto the tip, and `build`'s changes join the last of them. A conflict, or
    a result that would put conflict markers on the branch, writes nothing and names the paths.
    An exception from `build` (a landing it refuses) leaves the branch as it was.
    """
    stopped: list[Landed] = []
    if base is not None and not repo.descends_within(head, base):
        base = None  # the branch was rewritten below its start: find the real merge base
    if base is not None:
        # Markers can only come from the branch's own change (a clean merge makes none, and what the
        # tip holds is there already), and that change is the same on every try: check it once.
        markers = conflict_marker_paths(repo, repo.commit(base).tree_id, repo.commit(head).tree_id)
        if markers:
            return Landed(None, markers, refused=_markers_refusal(markers))

    def attempt(tip: str) -> pygit2.Oid | None:
        commits = commits_to_replay(repo, head, base or tip) if replay_commits else None
        if commits is not None:
            result = _replay_onto(repo, commits, tip, build, message)
        else:
            result = _merge_onto(repo, head, tip, base, build, message)
        if isinstance(result, Landed):
            stopped.append(result)
            return None
        if base is None:  # the branch's own change was not known up front
            markers = conflict_marker_paths(repo, repo.commit(tip).tree_id, repo.commit(str(result)).tree_id)
            if markers:
                stopped.append(Landed(None, markers, refused=_markers_refusal(markers)))
                return None
        return result

    landed = _swap_loop(repo, branch, attempt, f"swarmd: {_subject(message)}", "land", guard)
    if stopped:
        return Landed(None, stopped[-1].conflicts, landed.tries, stopped[-1].refused)
    return landed


MARKERS = re.compile(rb"^(<{7}|\|{7}|>{7})( |$)", re.MULTILINE)


def _markers_refusal(paths: tuple[str, ...]) -> str:
    return "conflict markers at a line start in " + ", ".join(paths)


def conflict_marker_paths(repo: Repo, old_tree: pygit2.Oid, new_tree: pygit2.Oid) -> tuple[str, ...]:
    """Files that `new_tree` changes and that hold git's conflict markers at a line start."""
    found = []
    for path, blob in sorted(changed_paths(repo.raw, old_tree, new_tree).items()):
        if blob is not None and MARKERS.search(repo.raw[blob].data):
            found.append(path)
    return tuple(found)


def _merge_onto(
    repo: Repo, head: str, tip: str, base: str | None, build: Callable[[str], Changes | None], message: str
) -> pygit2.Oid | Landed:
    raw = repo.raw
    if tip == base or (base is None and repo.is_ancestor(tip, head)):
        tree = repo.commit(head).tree_id
    else:
        merged = merge_commits(repo, tip, head, base)
        if not merged.clean:
            return Landed(None, merged.conflicts)
        tree = pygit2.Oid(hex=merged.tree)
    tree = apply_changes(raw, tree, build(tip) or {})
    # A branch with no commits of its own (a planner that added nothing) adds no second parent.
    own = head != base if base is not None else not repo.is_ancestor(head, tip)
    parents = [pygit2.Oid(hex=tip)] + ([pygit2.Oid(hex=head)] if own else [])
    sig = repo.signature()
    return raw.create_commit(None, sig, sig, message, tree, parents)


def _replay_onto(
    repo: Repo, commits: list[pygit2.Commit], tip: str, build: Callable[[str], Changes | None], message: str
) -> pygit2.Oid | Landed:
    raw = repo.raw
    replayed = replay(repo, commits, tip)
    if replayed.head is None:
        return Landed(None, replayed.conflicts)
    changes = build(tip)
    if not changes:
        return pygit2.Oid(hex=replayed.head)
    last = repo.commit(replayed.head)
    tree = apply_changes(raw, last.tree_id, changes)
    if replayed.head == tip:  # every commit was already there: the bookkeeping gets its own commit
        sig = repo.signature()
        return raw.create_commit(None, sig, sig, message, tree, [last.id])
    return raw.create_commit(None, last.author, last.committer, last.message, tree, [p.id for p in last.parents])


def _swap_loop(
    repo: Repo, branch: str, attempt: Callable[[str], pygit2.Oid | None], reflog: str, kind: str,
    guard: Guard | None,
) -> Landed:
    name = f"refs/heads/{branch}"
    for tries in range(1, MAX_TRIES + 1):
        ref = repo.raw.references.get(name)
        if ref is None:
            raise GitError(f"branch {branch!r} does not exist; run `swarmd init` to create it")
        tip = str(ref.target)
        if guard is not None:
            guard(tip)
        new = attempt(tip)
        if new is None:
            return Landed(None, tries=tries)
        failpoints.reached(f"{kind}:before-swap")
        if _swap(repo, ref, tip, new, reflog):
            failpoints.reached(f"{kind}:after-swap")
            return Landed(str(new), tries=tries)
    raise GitError(f"gave up moving {branch!r} after {MAX_TRIES} lost races; is something rewriting it in a loop?")


def _swap(repo: Repo, ref: pygit2.Reference, tip: str, new: pygit2.Oid, reflog: str) -> bool:
    """Move `ref` from `tip` to `new`; False if another writer moved it first. While another writer
    holds the ref's lock without having moved it yet, wait for it, but not for a lock left by a crash."""
    waited_since: float | None = None
    while True:
        try:
            ref.set_target(new, reflog)
            return True
        except (pygit2.GitError, OSError) as exc:
            if repo.ref_target(ref.name) != tip:
                return False
            if not (isinstance(exc, OSError) or "lock" in str(exc).lower()):
                raise GitError(f"could not move {ref.name} to {new}: {exc}") from exc
            now = time.monotonic()
            waited_since = waited_since or now
            if now - waited_since > LOCK_PATIENCE_S:
                raise GitError(
                    f"{ref.name}.lock has been held for {LOCK_PATIENCE_S:.0f} s: if no git or swarmd process is "
                    "working in this repository, a crash left it; delete it and retry"
                ) from exc
            time.sleep(0.0005)  # the other writer is between taking the lock and moving the ref


def _subject(message: str) -> str:
    return message.strip().partition("\n")[0]
