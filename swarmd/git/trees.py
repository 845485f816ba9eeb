"""Build new trees from old ones with nested TreeBuilders: only the folders on a changed path are rewritten."""

from __future__ import annotations

from collections.abc import Mapping

import pygit2


TREE_MODE = pygit2.enums.FileMode.TREE
BLOB_MODE = pygit2.enums.FileMode.BLOB

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


def changed_paths(raw: pygit2.Repository, old: pygit2.Oid | None, new: pygit2.Oid | None) -> dict[str, pygit2.Oid | None]:
    """Every file path that differs between two trees -> its blob id in `new` (None: gone), opening
    only folders whose ids differ."""
    found: dict[str, pygit2.Oid | None] = {}
    _diff(raw, old, new, "", found)
    return found


def _diff(raw: pygit2.Repository, old: pygit2.Oid | None, new: pygit2.Oid | None, prefix: str, found: dict) -> None:
    if old == new:
        return
    old_entries = {e.name: (e.id, e.filemode) for e in raw[old]} if old is not None else {}
    new_entries = {e.name: (e.id, e.filemode) for e in raw[new]} if new is not None else {}
    for name in old_entries.keys() | new_entries.keys():
        before, after = old_entries.get(name), new_entries.get(name)
        if before == after:
            continue
        path = prefix + name
        old_tree = before[0] if before and before[1] == TREE_MODE else None
        new_tree = after[0] if after and after[1] == TREE_MODE else None
        if old_tree is not None or new_tree is not None:
            _diff(raw, old_tree, new_tree, path + "/", found)
        if before is not None and before[1] != TREE_MODE and (after is None or after[1] == TREE_MODE):
            found[path] = None
        if after is not None and after[1] != TREE_MODE:
            found[path] = after[0]
