"""Build new trees from old ones with nested TreeBuilders: only the folders on a changed path are rewritten."""

from __future__ import annotations

from collections.abc import Mapping

import pygit2

from swarmd.git.repo import BLOB_MODE, TREE_MODE

# A change to one path: new file content, or None to delete the file.
Changes = Mapping[str, bytes | None]


def apply_changes(raw: pygit2.Repository, tree: pygit2.Oid | None, changes: Changes) -> pygit2.Oid:
    """The id of `tree` with `changes` applied; folders left empty disappear, as in git."""
    new = _apply(raw, tree, changes)
    return new if new is not None else raw.TreeBuilder().write()


def _apply(raw: pygit2.Repository, tree: pygit2.Oid | None, changes: Changes) -> pygit2.Oid | None:
    builder = raw.TreeBuilder(raw[tree]) if tree is not None else raw.TreeBuilder()
    below: dict[str, dict[str, bytes | None]] = {}
    for path, data in changes.items():
        head, _, rest = path.partition("/")
        if rest:
            below.setdefault(head, {})[rest] = data
        elif data is None:
            if builder.get(head) is not None:
                builder.remove(head)
        else:
            builder.insert(head, raw.create_blob(data), BLOB_MODE)
    for head, sub_changes in below.items():
        entry = builder.get(head)
        subtree = entry.id if entry is not None and entry.filemode == TREE_MODE else None
        new = _apply(raw, subtree, sub_changes)
        if new is None:
            if entry is not None:
                builder.remove(head)
        else:
            builder.insert(head, new, TREE_MODE)
    return builder.write() if len(builder) else None
