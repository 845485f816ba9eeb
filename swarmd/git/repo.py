"""Open a repository and read from it: refs, commits, files at a commit. No working tree is touched."""

from __future__ import annotations

from pathlib import Path

import pygit2

from swarmd.errors import GitError, UsageError
from swarmd.git.cli import require_git
from swarmd.git.trees import TREE_MODE, changed_paths

SWARMD_NAME = "swarmd"
SWARMD_EMAIL = "swarmd@localhost"

_KINDS = {
    pygit2.enums.FileMode.BLOB: "file",
    pygit2.enums.FileMode.BLOB_EXECUTABLE: "file",
    pygit2.enums.FileMode.LINK: "symlink",
    pygit2.enums.FileMode.TREE: "folder",
    pygit2.enums.FileMode.COMMIT: "submodule",
}


def entry_kind(mode: int) -> str:
    """What a tree entry's mode says it is: `file` (a regular file), `symlink`, `folder` or `submodule`."""
    return _KINDS.get(mode, f"git entry of mode {mode:o}")


class Repo:
    """One repository, as swarmd sees it: its main working tree, and `.git/swarm/` for runtime state."""

    def __init__(self, raw: pygit2.Repository) -> None:
        self.raw = raw

    @classmethod
    def discover(cls, start: Path) -> Repo:
        require_git()
        found = pygit2.discover_repository(str(start))
        if found is None:
            raise UsageError(f"{start}: not inside a git repository; run swarmd in one (or `git init` first)")
        raw = pygit2.Repository(found)
        if raw.is_bare:
            raise UsageError(f"{raw.path}: a bare repository has no working tree; run swarmd in a clone with one")
        if raw.head_is_unborn:
            raise UsageError(f"{raw.workdir}: the repository has no commits yet; make a first commit, then retry")
        return cls(raw)

    @classmethod
    def create(cls, path: Path, files: dict[str, bytes], message: str) -> Repo:
        """A new repository with one commit of `files` on `main`, by swarmd (no git identity needed)."""
        raw = pygit2.init_repository(str(path), initial_head="main")
        index = raw.index
        for name, data in files.items():
            target = path / name
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(data)
            index.add(name)
        index.write()
        sig = pygit2.Signature(SWARMD_NAME, SWARMD_EMAIL)
        raw.create_commit("HEAD", sig, sig, message, index.write_tree(), [])
        return cls(raw)

    @classmethod
    def at(cls, path: Path) -> Repo:
        return cls(pygit2.Repository(str(path)))

    @property
    def workdir(self) -> Path:
        return Path(self.raw.workdir)

    @property
    def common_dir(self) -> Path:
        """`.git` of the main repository, also when opened from a linked worktree."""
        git_dir = Path(self.raw.path)
        commondir = git_dir / "commondir"
        if commondir.is_file():
            return (git_dir / commondir.read_text().strip()).resolve()
        return git_dir

    @property
    def swarm_dir(self) -> Path:
        return self.common_dir / "swarm"

    def signature(self) -> pygit2.Signature:
        return pygit2.Signature(SWARMD_NAME, SWARMD_EMAIL)

    def head_commit(self) -> str:
        return str(self.raw.head.target)

    def ref_target(self, name: str) -> str | None:
        ref = self.raw.references.get(name)
        return None if ref is None else str(ref.target)

    def branch_tip(self, branch: str) -> str | None:
        return self.ref_target(f"refs/heads/{branch}")

    def commit(self, commit_id: str) -> pygit2.Commit:
        try:
            return self.raw[commit_id].peel(pygit2.Commit)
        except (KeyError, ValueError, pygit2.GitError):
            raise GitError(f"no commit {commit_id} in {self.raw.path}") from None

    def tree_entry(self, commit_id: str, path: str) -> pygit2.Object | None:
        tree = self.commit(commit_id).tree
        try:
            return tree[path] if path else tree
        except KeyError:
            return None

    def read_file(self, commit_id: str, path: str) -> bytes | None:
        entry = self.tree_entry(commit_id, path)
        return entry.data if isinstance(entry, pygit2.Blob) else None

    def blob_id(self, commit_id: str, path: str) -> str | None:
        """The id of the file at `path` in a commit, None if there is no file there."""
        entry = self.tree_entry(commit_id, path)
        return str(entry.id) if isinstance(entry, pygit2.Blob) else None

    def folder_blobs(self, commit_id: str, path: str) -> dict[str, str]:
        """The files directly inside one folder at a commit, name -> blob id; {} when it is absent."""
        tree = self.tree_entry(commit_id, path)
        if not isinstance(tree, pygit2.Tree):
            return {}
        return {entry.name: str(entry.id) for entry in tree if entry.filemode != TREE_MODE}

    def folder_entries(self, commit_id: str, path: str) -> dict[str, tuple[str, int]]:
        """Everything directly inside one folder at a commit, files or not: name -> (object id, mode);
        {} when it is absent. `entry_kind` tells what a mode is."""
        tree = self.tree_entry(commit_id, path)
        if not isinstance(tree, pygit2.Tree):
            return {}
        return {entry.name: (str(entry.id), int(entry.filemode)) for entry in tree}

    def entry(self, commit_id: str, path: str) -> tuple[str, int] | None:
        """(object id, mode) of whatever is at `path` in a commit (file, folder, symlink, submodule), or None."""
        found = self.tree_entry(commit_id, path)
        return None if found is None or not path else (str(found.id), int(found.filemode))

    def object_size(self, object_id: str) -> int:
        """An object's size in bytes, from its header: the object itself is not loaded."""
        return int(self.raw.odb.read_header(pygit2.Oid(hex=object_id))[1])

    def read_blob(self, blob_id: str) -> bytes:
        return self.raw[blob_id].data

    def merge_base(self, one: str, other: str) -> str | None:
        base = self.raw.merge_base(pygit2.Oid(hex=one), pygit2.Oid(hex=other))
        return None if base is None else str(base)

    def changed_files(self, old_commit: str | None, new_commit: str) -> dict[str, str | None]:
        """path -> new blob id (None: removed) for every file that differs between two commits."""
        old_tree = self.commit(old_commit).tree_id if old_commit else None
        found = changed_paths(self.raw, old_tree, self.commit(new_commit).tree_id)
        return {path: (str(blob) if blob is not None else None) for path, blob in found.items()}

    def delete_branch(self, branch: str) -> None:
        ref = self.raw.references.get(f"refs/heads/{branch}")
        if ref is not None:
            ref.delete()

    def rename_branch(self, branch: str, new_name: str) -> None:
        """Keep a branch under another name (for inspection); an existing target is replaced."""
        ref = self.raw.references.get(f"refs/heads/{branch}")
        if ref is not None:
            self.raw.references.create(f"refs/heads/{new_name}", ref.target, force=True)
            ref.delete()

    def descends_within(self, head: str, base: str, limit: int = 500) -> bool:
        """Whether `head` descends from `base` within `limit` commits: a walk down from `head` only,
        which stays short for a task's branch (a full ancestry test walks both histories)."""
        target = pygit2.Oid(hex=base)
        seen: set[pygit2.Oid] = set()
        queue = [pygit2.Oid(hex=head)]
        while queue and len(seen) < limit:
            oid = queue.pop()
            if oid == target:
                return True
            if oid not in seen:
                seen.add(oid)
                queue.extend(self.raw[oid].parent_ids)
        return False

    def is_ancestor(self, ancestor: str, descendant: str) -> bool:
        return ancestor == descendant or self.raw.descendant_of(descendant, ancestor)

    def branch_name_problem(self, branch: str) -> str | None:
        """Why a new branch cannot have this name, or None."""
        name = f"refs/heads/{branch}"
        if not pygit2.reference_is_valid_name(name):
            return "not a valid branch name"
        for existing in self.raw.references:
            if existing.startswith(name + "/") or name.startswith(existing + "/"):
                return f"it clashes with the existing {existing.removeprefix('refs/heads/')!r} (git keeps refs as files)"
        return None

    def create_branch(self, branch: str, commit_id: str) -> None:
        """Create a branch that must not exist yet; never moves an existing one."""
        try:
            self.raw.references.create(f"refs/heads/{branch}", pygit2.Oid(hex=commit_id))
        except (pygit2.AlreadyExistsError, ValueError, OSError) as exc:
            raise GitError(f"could not create branch {branch!r}: {exc}") from None

    def checked_out_branches(self) -> dict[str, Path]:
        """branch -> the working tree that has it checked out, over the main one and every linked one."""
        found: dict[str, Path] = {}
        heads = [(self.common_dir / "HEAD", self.common_dir.parent)]
        for admin in (self.common_dir / "worktrees").glob("*"):
            gitdir = admin / "gitdir"
            if gitdir.is_file():
                heads.append((admin / "HEAD", Path(gitdir.read_text().strip()).parent))
        for head, checkout in heads:
            try:
                text = head.read_text().strip()
            except FileNotFoundError:
                continue
            if text.startswith("ref: refs/heads/"):
                found[text.removeprefix("ref: refs/heads/")] = checkout
        return found
