"""Differential test: swarmd's in-memory merge against `git merge-tree --write-tree` (git's ort strategy).

`swarmd.git.merge` promises the same answer as git: its fast path merges trees entry by entry and steps
aside for git only where both sides touched the same name. Whether that split is sound (renames,
directory renames, type changes, modes, empty folders...) is hard to argue case by case, so this test
asks git on thousands of generated branch pairs. Every case comes from a seeded `random.Random`: a base
commit with a small nested tree, and "ours" and "theirs" commits that each apply 1-4 random operations
to it (sometimes the same ones, often on the same files). Both `merge_commits` and `merge_trees` must
give git's tree id, or a conflict on exactly the paths git names. Two spellings are evened out, no more:
merge_trees has no commits, so the `path~<commit id>` git gives a file moved aside names a commit made up
on the fly (masked on both sides); and a conflict git reports with no path (only in its messages) is the
placeholder merge.py reports for it.

Set MERGE_DIFF_CASES to run more (or fewer) cases; a failure names the seed of each mismatching case.
"""

from __future__ import annotations

import os
import random
import re
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pygit2
import pytest

from swarmd.git.merge import PATHLESS_CONFLICT, Merged, merge_commits, merge_trees
from swarmd.git.repo import Repo

CASES = int(os.environ.get("MERGE_DIFF_CASES", "2000"))
BATCHES = 8
MERGE_TREES_EVERY = 4  # merge_trees (with the base tree) on every 4th case
NO_BASE_EVERY = 20  # and merge_trees without a base (both sides "added" everything) on every 20th

FILE, EXEC, LINK, TREE = 0o100644, 0o100755, 0o120000, 0o040000
DIR_NAMES = ("src", "lib", "docs", "a", "b")
FILE_NAMES = ("x.txt", "y.txt", "z.py", "main.c", "README", "a", "b")
# How often random_op tries each kind ("move" is a rename to the same name in another folder).
OP_WEIGHTS = {"add": 3, "edit": 5, "delete": 2, "rename": 3, "move": 2, "move_dir": 2, "chmod": 1}
OP_WEIGHTS |= {"file_to_dir": 1, "dir_to_file": 1, "symlink": 1}
WORDS = ("alpha", "beta", "gamma", "delta", "omega", "pi", "rho", "tau")
SIGNATURE = pygit2.Signature("Case Maker", "cases@example.com", 0, 0)

LABEL = re.compile(r"~[0-9a-f]{40}$")
# What merge.py reports for a conflict git names only in its messages, with no conflicted path (say,
# a file that directory rename detection would move onto an existing one).
PATHLESS = PATHLESS_CONFLICT

Files = dict[str, tuple[int, bytes]]  # path -> (mode, content); a tree, flattened
Outcome = tuple[str | None, frozenset[str]]  # (tree id when clean, conflicted paths)


# ---------------------------------------------------------------------------------------------------
# Operations on a flattened tree


@dataclass(frozen=True)
class Op:
    """One change to a tree. Concrete (no randomness left), so it applies identically to both sides."""

    kind: str  # add edit delete rename move_dir chmod file_to_dir dir_to_file symlink
    path: str
    to: str = ""  # rename / move_dir: the destination; file_to_dir: the new file inside `path`
    text: str = ""  # new content, new line (edit, rename) or symlink target
    line: int = -1  # edit / rename: the line replaced by `text` (-1: rename without an edit)
    mode: int = FILE  # chmod: the new mode

    def __str__(self) -> str:
        match self.kind:
            case "add" | "dir_to_file":
                return f"{self.kind} {self.path} ({_summary(self.text)})"
            case "edit":
                return f"edit {self.path} line {self.line} := {self.text!r}"
            case "rename":
                edit = f" with line {self.line} := {self.text!r}" if self.line >= 0 else ""
                return f"rename {self.path} -> {self.to}{edit}"
            case "move_dir":
                return f"move_dir {self.path}/ -> {self.to}/"
            case "chmod":
                return f"chmod {self.path} {self.mode:o}"
            case "file_to_dir":
                return f"file_to_dir {self.path} -> {self.to} ({_summary(self.text)})"
            case "symlink":
                return f"symlink {self.path} -> {self.text!r}"
            case _:
                return f"{self.kind} {self.path}"


def _summary(text: str) -> str:
    lines = text.splitlines()
    return f"{len(lines)} lines, {lines[0]!r}..." if lines else "empty"


def apply(files: Files, op: Op) -> None:
    match op.kind:
        case "add":
            files[op.path] = (FILE, op.text.encode())
        case "edit":
            mode, data = files[op.path]
            files[op.path] = (mode, _edit_line(data, op.line, op.text))
        case "delete":
            del files[op.path]
        case "rename":
            mode, data = files.pop(op.path)
            files[op.to] = (mode, _edit_line(data, op.line, op.text) if op.line >= 0 else data)
        case "move_dir":
            for path in _under(files, op.path):
                files[op.to + path[len(op.path) :]] = files.pop(path)
        case "chmod":
            files[op.path] = (op.mode, files[op.path][1])
        case "file_to_dir":
            del files[op.path]
            files[op.to] = (FILE, op.text.encode())
        case "dir_to_file":
            for path in _under(files, op.path):
                del files[path]
            files[op.path] = (FILE, op.text.encode())
        case "symlink":
            files[op.path] = (LINK, op.text.encode())
        case _:
            raise ValueError(op.kind)


def _edit_line(data: bytes, line: int, text: str) -> bytes:
    lines = data.decode().splitlines()
    if line < len(lines):
        lines[line] = text
    else:
        lines.append(text)
    return ("\n".join(lines) + "\n").encode()


def _under(files: Files, folder: str) -> list[str]:
    return [path for path in files if path.startswith(folder + "/")]


def _folders(files: Files) -> list[str]:
    return sorted({path.rsplit("/", i)[0] for path in files for i in range(1, path.count("/") + 1)})


def _fits(files: Files, path: str) -> bool:
    """Whether a file can be added at `path`: not taken, no file where a folder must be, not a folder."""
    parts = path.split("/")
    return (
        path not in files
        and not any("/".join(parts[:i]) in files for i in range(1, len(parts)))
        and not _under(files, path)
    )


# ---------------------------------------------------------------------------------------------------
# Random generation


def _text(rng: random.Random) -> str:
    """Fresh content whose lines no other file shares, so rename detection pairs files by intent."""
    tag = f"{rng.randrange(16**6):06x}"
    count = rng.choice((1, 2, 4, 6, 8, 8, 10))
    return "".join(f"{tag} line {i}: {rng.choice(WORDS)}\n" for i in range(count))


def _random_path(rng: random.Random) -> str:
    folders = [rng.choice(DIR_NAMES) for _ in range(rng.choice((0, 1, 1, 2, 2, 3)))]
    return "/".join([*folders, rng.choice(FILE_NAMES)])


def _free_path(rng: random.Random, files: Files, near: str | None = None) -> str | None:
    """A path where a file fits; with `near`, in that folder or under it."""
    for _ in range(20):
        path = _random_path(rng)
        if near is not None:
            path = f"{near}/{path.rsplit('/', 1)[-1] if rng.random() < 0.7 else path}"
        if _fits(files, path):
            return path
    return None


def random_tree(rng: random.Random) -> Files:
    files: Files = {}
    size = rng.randint(5, 15)
    while len(files) < size:
        path = _free_path(rng, files)
        if path is not None:
            files[path] = (FILE, _text(rng).encode())
    for path in rng.sample(sorted(files), rng.choice((0, 0, 1, 2))):
        files[path] = (rng.choice((EXEC, LINK)), files[path][1] if rng.random() < 0.7 else b"x.txt")
    return files


def random_op(rng: random.Random, files: Files, focus: list[str]) -> Op | None:
    """One operation that applies to `files`, preferring the paths in `focus` (the other side's)."""
    regular = [path for path, (mode, _) in files.items() if mode != LINK]
    focused = [path for path in focus if path in files]
    folders = _folders(files)

    def pick(paths: list[str]) -> str | None:
        near = [path for path in focused if path in paths]
        if near and rng.random() < 0.6:
            return rng.choice(near)
        return rng.choice(paths) if paths else None

    kind = rng.choices(list(OP_WEIGHTS), weights=list(OP_WEIGHTS.values()))[0]
    match kind:
        case "add":
            folder = rng.choice(folders) if folders and rng.random() < 0.6 else None
            path = _free_path(rng, files, folder)
            return Op("add", path, text=_text(rng)) if path else None
        case "edit":
            path = pick(regular)
            if path is None:
                return None
            lines = files[path][1].count(b"\n")
            return Op("edit", path, line=rng.randrange(lines + 1), text=f"edited: {rng.choice(WORDS)}")
        case "delete":
            path = pick(sorted(files))
            return Op("delete", path) if path else None
        case "rename" | "move":
            path = pick(sorted(files))
            if path is None:
                return None
            folder, _, name = path.rpartition("/")
            rest = {p: v for p, v in files.items() if p != path}
            if kind == "rename":  # a new name in the same folder
                to = f"{folder}/{rng.choice(FILE_NAMES)}".lstrip("/")
            else:  # the same name in another folder
                to = f"{rng.choice([*folders, ''])}/{name}".lstrip("/")
            if to == path or not _fits(rest, to):
                return None
            if files[path][0] != LINK and rng.random() < 0.4:
                return Op("rename", path, to, text=f"renamed: {rng.choice(WORDS)}", line=rng.randrange(8))
            return Op("rename", path, to)
        case "move_dir":
            source = pick(folders)
            if source is None:
                return None
            parent = rng.choice(["", *[f for f in folders if not (f + "/").startswith(source + "/")]])
            to = f"{parent}/{rng.choice(DIR_NAMES)}".lstrip("/")
            moved = _under(files, source)
            rest = {p: v for p, v in files.items() if p not in moved}
            inside = (to + "/").startswith(source + "/")
            if inside or not all(_fits(rest, to + p[len(source) :]) for p in moved):
                return None
            return Op("move_dir", source, to)
        case "chmod":
            path = pick(regular)
            if path is None:
                return None
            return Op("chmod", path, mode=EXEC if files[path][0] == FILE else FILE)
        case "file_to_dir":
            path = pick(sorted(files))
            return Op("file_to_dir", path, f"{path}/{rng.choice(FILE_NAMES)}", _text(rng)) if path else None
        case "dir_to_file":
            folder = pick(folders)
            return Op("dir_to_file", folder, text=_text(rng)) if folder else None
        case "symlink":
            path = pick(regular) if rng.random() < 0.5 else _free_path(rng, files)
            return Op("symlink", path, text=rng.choice(("x.txt", "../lib/a", "src"))) if path else None
    raise AssertionError(kind)


def random_ops(rng: random.Random, files: Files, count: int, focus: list[str]) -> list[Op]:
    """`count` operations, applied to `files` as they are chosen."""
    ops: list[Op] = []
    while len(ops) < count:
        op = random_op(rng, files, focus)
        if op is not None:
            apply(files, op)
            ops.append(op)
    return ops


def _touched(ops: list[Op]) -> list[str]:
    return [p for op in ops for p in (op.path, op.to) if p]


# ---------------------------------------------------------------------------------------------------
# Cases as commits


@dataclass
class Case:
    name: str  # "seed 123", or what a pinned case shows
    base_files: Files
    ours_ops: list[Op]
    theirs_ops: list[Op]
    base: pygit2.Commit = field(repr=False)
    ours: pygit2.Commit = field(repr=False)
    theirs: pygit2.Commit = field(repr=False)

    def describe(self) -> str:
        base = "\n".join(f"    {mode:o} {path}" for path, (mode, _) in sorted(self.base_files.items()))
        ours = "\n".join(f"    {op}" for op in self.ours_ops)
        theirs = "\n".join(f"    {op}" for op in self.theirs_ops)
        return f"{self.name}\n  base:\n{base}\n  ours:\n{ours}\n  theirs:\n{theirs}"


def write_tree(raw: pygit2.Repository, files: Files) -> pygit2.Oid:
    builder = raw.TreeBuilder()
    folders: dict[str, Files] = {}
    for path, (mode, data) in files.items():
        head, _, rest = path.partition("/")
        if rest:
            folders.setdefault(head, {})[rest] = (mode, data)
        else:
            builder.insert(head, raw.create_blob(data), mode)
    for name, below in folders.items():
        builder.insert(name, write_tree(raw, below), TREE)
    return builder.write()


def build_case(
    raw: pygit2.Repository, name: str, base_files: Files, ours_ops: list[Op], theirs_ops: list[Op]
) -> Case:
    """A root commit with `base_files`, and "ours" and "theirs" children with the operations applied."""

    def commit(message: str, ops: list[Op], parents: list[pygit2.Oid]) -> pygit2.Commit:
        files = dict(base_files)
        for op in ops:
            apply(files, op)
        tree = write_tree(raw, files)
        return raw[raw.create_commit(None, SIGNATURE, SIGNATURE, f"{message}, {name}", tree, parents)]

    base = commit("base", [], [])
    ours = commit("ours", ours_ops, [base.id])
    theirs = commit("theirs", theirs_ops, [base.id])
    return Case(name, base_files, ours_ops, theirs_ops, base, ours, theirs)


def make_case(raw: pygit2.Repository, seed: int) -> Case:
    rng = random.Random(seed)
    base_files = random_tree(rng)
    ours_files, theirs_files = dict(base_files), dict(base_files)
    ours_count, theirs_count = rng.randint(1, 4), rng.randint(1, 4)
    shared_count = rng.randint(1, min(ours_count, theirs_count)) if rng.random() < 0.2 else 0
    shared = random_ops(rng, ours_files, shared_count, [])
    for op in shared:
        apply(theirs_files, op)
    ours_ops = shared + random_ops(rng, ours_files, ours_count - shared_count, [])
    theirs_ops = shared + random_ops(rng, theirs_files, theirs_count - shared_count, _touched(ours_ops))
    return build_case(raw, f"seed {seed}", base_files, ours_ops, theirs_ops)


# ---------------------------------------------------------------------------------------------------
# The reference: git itself


def git_merge_tree(path: Path, ours: pygit2.Oid, theirs: pygit2.Oid) -> Outcome:
    proc = subprocess.run(
        ["git", "merge-tree", "--write-tree", "--name-only", "--no-messages", "-z", str(ours), str(theirs)],
        cwd=path,
        capture_output=True,
        text=True,
    )
    assert proc.returncode in (0, 1), f"git merge-tree failed: {proc.stderr}"
    tree, *paths = [part for part in proc.stdout.split("\0") if part]
    return (tree, frozenset()) if proc.returncode == 0 else (None, frozenset(paths or [PATHLESS]))


def outcome(merged: Merged) -> Outcome:
    return merged.tree, frozenset(merged.conflicts)


def unlabelled(result: Outcome) -> Outcome:
    """`result` with the commit ids that git appends to a path moved aside (`path~<commit>`) masked.

    merge_trees has no commits: git's labels there are those of the commits it makes up on the fly."""
    tree, conflicts = result
    return tree, frozenset(LABEL.sub("~<commit>", path) for path in conflicts)


def show(raw: pygit2.Repository, result: Outcome) -> str:
    tree, conflicts = result
    if tree is None:
        return f"conflict on {sorted(conflicts)}"
    return f"clean, tree {tree[:12]}:\n" + "\n".join(f"      {line}" for line in _listing(raw, raw[tree]))


def _listing(raw: pygit2.Repository, tree: pygit2.Tree, prefix: str = "") -> Iterator[str]:
    for entry in tree:
        if entry.filemode == TREE:
            empty = " (EMPTY TREE)" if len(raw[entry.id]) == 0 else ""
            yield f"{entry.filemode:06o} {prefix}{entry.name}/{empty}"
            yield from _listing(raw, raw[entry.id], f"{prefix}{entry.name}/")
        else:
            yield f"{entry.filemode:06o} {prefix}{entry.name} {str(entry.id)[:8]}"


# ---------------------------------------------------------------------------------------------------
# The test


@pytest.fixture(scope="module")
def repo(tmp_path_factory: pytest.TempPathFactory) -> Repo:
    """One bare repository for all cases; objects accumulate, which does not matter."""
    path = tmp_path_factory.mktemp("differential") / "repo.git"
    pygit2.init_repository(str(path), bare=True)
    return Repo.at(path)


def _batches() -> list[range]:
    size = -(-CASES // BATCHES)
    return [range(start, min(start + size, CASES)) for start in range(0, CASES, size)]


def _lines(tag: str, count: int = 8) -> bytes:
    return "".join(f"{tag} line {i}\n" for i in range(count)).encode()


# Small hand-made cases: the minimal forms of mismatches the generated cases found, and a few classics.
PINNED: dict[str, tuple[Files, list[Op], list[Op]]] = {
    "each side deletes one of a folder's two files": (
        {"d/f": (FILE, _lines("f")), "d/g": (FILE, _lines("g")), "keep": (FILE, _lines("k"))},
        [Op("delete", "d/f")],
        [Op("delete", "d/g")],
    ),
    "rename/delete inside a folder both sides leave identical": (
        {"d/f": (FILE, _lines("f")), "d/keep": (FILE, _lines("k"))},
        [Op("delete", "d/f")],
        [Op("rename", "d/f", "f")],
    ),
    "rename/rename to two places inside a folder both sides leave identical": (
        {"d/f": (FILE, _lines("f")), "d/keep": (FILE, _lines("k"))},
        [Op("rename", "d/f", "x")],
        [Op("rename", "d/f", "y")],
    ),
    "directory rename, and a file added to the old folder": (
        {"d/f": (FILE, _lines("f")), "d/g": (FILE, _lines("g"))},
        [Op("move_dir", "d", "e")],
        [Op("add", "d/new", text="new\n")],
    ),
    "directory rename moves a file added to the old folder onto an existing one": (
        {"d/f": (FILE, _lines("f")), "e/new": (FILE, _lines("e"))},
        [Op("add", "d/new", text="new\n")],
        [Op("move_dir", "d", "e")],
    ),
    "edits to different lines of a renamed file": (
        {"f": (FILE, _lines("f")), "keep": (FILE, _lines("k"))},
        [Op("rename", "f", "g", text="ours", line=1)],
        [Op("edit", "f", text="theirs", line=6)],
    ),
}


@pytest.mark.parametrize("name", PINNED)
def test_pinned_case_matches_git_merge_tree(repo: Repo, name: str) -> None:
    case = build_case(repo.raw, name, *PINNED[name])
    failures = check_merge_commits(repo, case) + check_merge_trees(repo, case)
    assert not failures, "\n\n".join(failures)


@pytest.mark.parametrize("seeds", _batches(), ids=lambda seeds: f"seeds{seeds.start}-{seeds.stop - 1}")
def test_merge_matches_git_merge_tree(repo: Repo, seeds: range) -> None:
    failures: list[str] = []
    for seed in seeds:
        case = make_case(repo.raw, seed)
        failures += check_merge_commits(repo, case)
        if seed % MERGE_TREES_EVERY == 0:
            failures += check_merge_trees(repo, case)
        if seed % NO_BASE_EVERY == 0:
            failures += check_merge_trees_without_base(repo, case)
    header = f"{len(failures)} mismatches with git in seeds {seeds.start}-{seeds.stop - 1} (the first 5):"
    assert not failures, "\n\n".join([header, *failures[:5]])


def check_merge_commits(repo: Repo, case: Case) -> list[str]:
    expected = git_merge_tree(Path(repo.raw.path), case.ours.id, case.theirs.id)
    got = outcome(merge_commits(repo, str(case.ours.id), str(case.theirs.id)))
    return _mismatch(repo, "merge_commits", case, expected, got)


def check_merge_trees(repo: Repo, case: Case) -> list[str]:
    expected = git_merge_tree(Path(repo.raw.path), case.ours.id, case.theirs.id)
    trees = str(case.base.tree_id), str(case.ours.tree_id), str(case.theirs.tree_id)
    got = outcome(merge_trees(repo, *trees))
    return _mismatch(repo, "merge_trees", case, unlabelled(expected), unlabelled(got))


def check_merge_trees_without_base(repo: Repo, case: Case) -> list[str]:
    """merge_trees(None, ...) against git merging the two trees as commits on an empty root commit."""
    raw = repo.raw
    empty_tree = raw.TreeBuilder().write()
    empty = raw.create_commit(None, SIGNATURE, SIGNATURE, f"empty, {case.name}", empty_tree, [])
    ours = raw.create_commit(None, SIGNATURE, SIGNATURE, "ours", case.ours.tree_id, [empty])
    theirs = raw.create_commit(None, SIGNATURE, SIGNATURE, "theirs", case.theirs.tree_id, [empty])
    expected = git_merge_tree(Path(raw.path), ours, theirs)
    got = outcome(merge_trees(repo, None, str(case.ours.tree_id), str(case.theirs.tree_id)))
    return _mismatch(repo, "merge_trees without a base", case, unlabelled(expected), unlabelled(got))


def _mismatch(repo: Repo, name: str, case: Case, expected: Outcome, got: Outcome) -> list[str]:
    if got == expected:
        return []
    return [
        f"{name} differs from git merge-tree, {case.describe()}\n"
        f"  git:    {show(repo.raw, expected)}\n  swarmd: {show(repo.raw, got)}"
    ]
