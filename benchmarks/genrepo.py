"""Generate a deterministic git repository for the benchmarks: N files in about M folders, some history.

One `git fast-import` stream writes every blob, tree and commit (no working tree, no index), then `git gc`
packs the objects with deltas as in a real repository, and `git reset --hard` checks out the user's working
tree. The same seed gives the same commit ids.

    python benchmarks/genrepo.py PATH [--files 20000] [--folders 1000] [--commits 100] [--seed 1]
"""

from __future__ import annotations

import argparse
import os
import random
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

WORDS = (
    "self return value import from class def if else elif for while in not and or None True False "
    "result error path name data items config state task tree commit branch merge build index cache "
    "handler request response client server token count total offset limit query record entry node "
    "parent child left right key map list set dict append extend update remove insert yield async await"
).split()
EPOCH = 1_700_000_000  # fixed dates, so the same seed gives the same commit ids
IGNORED = ("build/", "*.o", "__pycache__/")


@dataclass(frozen=True)
class Generated:
    path: Path
    files: list[str]  # every tracked file at the tip of `main`, sorted
    folders: int
    commits: int
    tip: str
    seconds: float


def _folders(rng: random.Random, count: int) -> list[str]:
    """`count` folders in a tree up to 6 deep, shallow ones more likely to get children."""
    folders: list[tuple[str, int]] = []
    names: set[str] = set()
    stems = ("src", "lib", "pkg", "core", "util", "api", "web", "cli", "io", "net", "db", "ui", "test", "docs")
    while len(folders) < count:
        if not folders or rng.random() < 0.04:
            parent, depth = "", 0
        else:
            parent, depth = rng.choice(folders)
            if depth >= 6:
                continue
        name = f"{rng.choice(stems)}_{rng.randrange(36 ** 3):03x}"
        path = f"{parent}/{name}" if parent else name
        if path not in names:
            names.add(path)
            folders.append((path, depth + 1))
    return [path for path, _ in folders]


def _content(rng: random.Random, lines: int) -> bytes:
    out = []
    for _ in range(lines):
        indent = "    " * rng.randrange(4)
        out.append(indent + " ".join(rng.choices(WORDS, k=rng.randrange(2, 12))))
    return ("\n".join(out) + "\n").encode()


def _data(payload: bytes) -> bytes:
    return b"data %d\n%s\n" % (len(payload), payload)


def generate(path: Path, files: int = 20_000, folders: int = 1_000, commits: int = 100, seed: int = 1) -> Generated:
    """Create the repository at `path` (which must not exist) on branch `main`."""
    started = time.perf_counter()
    rng = random.Random(seed)
    dirs = _folders(rng, folders)
    # every folder gets one file (git has no empty folders); the rest go to folders with skewed weights
    weights = [rng.paretovariate(1.5) for _ in dirs]
    owners = list(dirs) + rng.choices(dirs, weights=weights, k=max(files - len(dirs) - 2, 0))
    paths: set[str] = {".gitignore", "README.md"}
    for folder in owners:
        while True:
            ext = rng.choice((".py", ".py", ".py", ".md", ".json", ".txt", ".sh"))
            candidate = f"{folder}/f{rng.randrange(36 ** 4):04x}{ext}"
            if candidate not in paths:
                paths.add(candidate)
                break
    tracked = sorted(paths)

    path.mkdir(parents=True)
    env = {k: v for k, v in os.environ.items() if not k.startswith("GIT_")}
    git = lambda *args, **kw: subprocess.run(["git", *args], cwd=path, env=env, check=True, **kw)  # noqa: E731
    git("init", "-q", "-b", "main")
    for key, value in (("user.name", "Bench Person"), ("user.email", "bench@example.com"), ("gc.auto", "0"),
                       ("maintenance.auto", "false")):
        git("config", key, value)

    stream: list[bytes] = []
    when = EPOCH
    stream.append(b"commit refs/heads/main\n")
    stream.append(b"committer Bench Person <bench@example.com> %d +0000\n" % when)
    stream.append(_data(b"initial import"))
    stream.append(b"M 100644 inline .gitignore\n" + _data("\n".join(IGNORED).encode() + b"\n"))
    stream.append(b"M 100644 inline README.md\n" + _data(b"# generated repository\n"))
    changeable = [name for name in tracked if name not in (".gitignore", "README.md")]
    for name in changeable:
        mode = b"100755" if name.endswith(".sh") else b"100644"
        stream.append(b"M %s inline %s\n" % (mode, name.encode()))
        stream.append(_data(_content(rng, rng.randrange(5, 60))))
    stream.append(b"\n")
    for number in range(1, commits):
        when += 600
        stream.append(b"commit refs/heads/main\n")
        stream.append(b"committer Bench Person <bench@example.com> %d +0000\n" % when)
        stream.append(_data(b"change %d" % number))
        for name in rng.sample(changeable, rng.randrange(1, 6)):
            mode = b"100755" if name.endswith(".sh") else b"100644"
            stream.append(b"M %s inline %s\n" % (mode, name.encode()))
            stream.append(_data(_content(rng, rng.randrange(5, 60))))
        stream.append(b"\n")
    git("fast-import", "--quiet", input=b"".join(stream))
    git("gc", "--quiet", "--prune=now")
    git("reset", "--hard", "--quiet", "main")  # the user's own working tree, as in a real clone
    tip = subprocess.run(["git", "rev-parse", "main"], cwd=path, env=env, check=True, capture_output=True,
                         text=True).stdout.strip()
    return Generated(path, tracked, len(dirs), commits, tip, time.perf_counter() - started)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("path", type=Path)
    parser.add_argument("--files", type=int, default=20_000)
    parser.add_argument("--folders", type=int, default=1_000)
    parser.add_argument("--commits", type=int, default=100)
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args()
    made = generate(args.path, args.files, args.folders, args.commits, args.seed)
    print(f"{made.path}: {len(made.files)} files in {made.folders} folders, {made.commits} commits, "
          f"main at {made.tip}, {made.seconds:.1f} s")


if __name__ == "__main__":
    main()
