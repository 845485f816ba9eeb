"""The git command line's route for case (e): land one branch with its task file turned `done` in the same
commit, with a compare-and-swap of the branch, retrying lost races. Two variants: long-lived git
co-processes (`Plumbing`) or a temporary index; case (e) uses whichever is faster."""

from __future__ import annotations

import subprocess
import tempfile
from pathlib import Path

from gitbench.bench import Job, done
from gitcmd import ENV, git

from swarmd.store import dump_task, task_path


class Plumbing:
    """Long-lived `git cat-file --batch`, `git mktree --batch` and `git hash-object --stdin-paths`, so the
    CLI route spawns only what git 2.39 cannot keep alive: merge-tree, commit-tree and update-ref."""

    def __init__(self, cwd: Path) -> None:
        self.cwd = cwd

        def start(*args: str) -> subprocess.Popen[bytes]:
            return subprocess.Popen(["git", *args], cwd=cwd, env=ENV, stdin=subprocess.PIPE, stdout=subprocess.PIPE)

        self.cat = start("cat-file", "--batch")
        self.mktree = start("mktree", "--batch")
        self.hasher = start("hash-object", "-w", "--no-filters", "--stdin-paths")
        self.scratch = Path(tempfile.mkstemp(prefix="bench-blob-")[1])

    def _ask(self, proc: subprocess.Popen[bytes], text: bytes) -> bytes:
        assert proc.stdin is not None and proc.stdout is not None
        proc.stdin.write(text)
        proc.stdin.flush()
        return proc.stdout.readline().strip()

    def resolve(self, name: str) -> tuple[str, bytes]:
        """(id, content) of an object named by id, ref or `tree:path`."""
        header = self._ask(self.cat, name.encode() + b"\n").split()
        if header[-1] == b"missing":
            raise KeyError(name)
        assert self.cat.stdout is not None
        body = self.cat.stdout.read(int(header[2]) + 1)[:-1]
        return header[0].decode(), body

    def write_blob(self, data: bytes) -> str:
        self.scratch.write_bytes(data)
        return self._ask(self.hasher, str(self.scratch).encode() + b"\n").decode()

    def write_tree(self, entries: dict[bytes, tuple[bytes, bytes]]) -> str:
        lines = []
        for name, (mode, oid) in entries.items():
            kind = b"tree" if mode == b"40000" else b"commit" if mode == b"160000" else b"blob"
            lines.append(b"%s %s %s\t%s\n" % (mode.rjust(6, b"0"), kind, oid, name))
        return self._ask(self.mktree, b"".join(lines) + b"\n").decode()

    def tree_with_file(self, tree: str, path: str, blob: str) -> str:
        """`tree` with the blob at `path`, rewriting only the trees on that path."""
        parts = path.split("/")
        levels = []
        for depth in range(len(parts)):
            name = tree if depth == 0 else f"{tree}:{'/'.join(parts[:depth])}"
            try:
                levels.append(_parse_tree(self.resolve(name)[1]))
            except KeyError:
                levels.append({})
        oid, mode = blob.encode(), b"100644"
        for depth in range(len(parts) - 1, -1, -1):
            levels[depth][parts[depth].encode()] = (mode, oid)
            oid, mode = self.write_tree(levels[depth]).encode(), b"40000"
        return oid.decode()

    def close(self) -> None:
        for proc in (self.cat, self.mktree, self.hasher):
            assert proc.stdin is not None
            proc.stdin.close()
            proc.wait()
        self.scratch.unlink(missing_ok=True)


def _parse_tree(body: bytes) -> dict[bytes, tuple[bytes, bytes]]:
    entries, at = {}, 0
    while at < len(body):
        space = body.index(b" ", at)
        nul = body.index(b"\0", space)
        entries[body[space + 1:nul]] = (body[at:space], body[nul + 1:nul + 21].hex().encode())
        at = nul + 21
    return entries


def cli_land(cwd: Path, ref: str, job: Job, route: str, plumbing: Plumbing | None, index_env: dict[str, str]) -> int:
    """Land one branch with its task file through the git CLI; returns the number of tries."""
    path, data = task_path(job.task.id), dump_task(done(job.task))
    message = f"land task {job.task.id}"
    blob = plumbing.write_blob(data) if plumbing else git(cwd, "hash-object", "-w", "--stdin", data=data)
    tries = 0
    while True:
        tries += 1
        tip = plumbing.resolve(ref)[0] if plumbing else git(cwd, "rev-parse", ref)
        proc = subprocess.run(["git", "merge-tree", "--write-tree", tip, job.head], cwd=cwd, env=ENV,
                              capture_output=True)
        if proc.returncode != 0:
            raise RuntimeError(f"merge-tree {tip} {job.head}: conflict or error: {proc.stdout!r} {proc.stderr!r}")
        merged = proc.stdout.split(b"\n", 1)[0].decode()
        if plumbing:
            tree = plumbing.tree_with_file(merged, path, blob)
        else:
            git(cwd, "read-tree", merged, env=index_env)
            git(cwd, "update-index", "--add", "--cacheinfo", f"100644,{blob},{path}", env=index_env)
            tree = git(cwd, "write-tree", env=index_env)
        new = git(cwd, "commit-tree", tree, "-p", tip, "-p", job.head, "-m", message)
        proc = subprocess.run(["git", "update-ref", ref, new, tip], cwd=cwd, env=ENV, capture_output=True)
        if proc.returncode == 0:
            return tries
        err = proc.stderr.decode()
        if "but expected" not in err and "File exists" not in err and "lock" not in err:
            raise RuntimeError(f"update-ref failed: {err}")
