"""The integration tip without the swarm's bookkeeping: one commit, built in memory, that a person's branch
can merge with plain `git merge` (`swarmd merge`, ADR 0017).

Its tree is the tip's with the `.swarm` entry replaced by the one of the person's HEAD (or removed when HEAD
has none), so a merge of it never touches `.swarm/` in their branch or working tree. Its first parent is the
tip, so the branch then holds the swarm's history and the next merge starts from there. When HEAD already
merged an earlier export, that export is the second parent: the next merge's base is then a commit without
the swarm's task and cycle files, which git's rename detection could otherwise pair with similar files added
on either side (a rename on one side of a path deleted on the other is a conflict).
"""

from __future__ import annotations

import pygit2

from swarmd.git.repo import SWARMD_EMAIL, Repo


def export_commit(repo: Repo, branch: str, tip: str, head: str, folder: str) -> str:
    """Build and write (unreferenced) the commit `swarmd merge` merges into `head`: `branch` at `tip` with
    the top-level `folder` (`.swarm`) as it is at `head`."""
    raw = repo.raw
    builder = raw.TreeBuilder(repo.commit(tip).tree)
    if builder.get(folder) is not None:
        builder.remove(folder)
    ours = repo.commit(head).tree
    if folder in ours:
        entry = ours[folder]
        builder.insert(folder, entry.id, entry.filemode)
    parents = [pygit2.Oid(hex=tip)]
    earlier = previous_export(repo, tip, head, folder)
    if earlier is not None:
        parents.append(pygit2.Oid(hex=earlier))
    sig = repo.signature()
    message = f"swarmd: {branch} at {tip[:10]}{_subject_end(folder)}\n"
    return str(raw.create_commit(None, sig, sig, message, builder.write(), parents))


def _subject_end(folder: str) -> str:
    return f" without {folder}/"


def previous_export(repo: Repo, tip: str, head: str, folder: str) -> str | None:
    """The export that `head` merged last, when it merged one: a commit by swarmd in `head`'s history whose
    first parent is where `head` and `tip` meet. Walks only `head`'s commits that `tip` lacks."""
    base = repo.merge_base(head, tip)
    if base is None or base == tip:
        return None
    base_oid = pygit2.Oid(hex=base)
    walker = repo.raw.walk(pygit2.Oid(hex=head))
    walker.hide(base_oid)
    for commit in walker:
        if (
            commit.parent_ids[:1] == [base_oid]
            and commit.author.email == SWARMD_EMAIL
            and commit.message.partition("\n")[0].endswith(_subject_end(folder))
        ):
            return str(commit.id)
    return None
