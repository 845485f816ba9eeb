"""Running git from a benchmark: the one subprocess helper both benchmarks share.

The benchmarks drive git in repositories of their own, so the caller's GIT_* variables (a GIT_DIR or
GIT_INDEX_FILE set by a hook, say) must not leak into those commands: `ENV` is the environment without them.
"""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

ENV = {key: value for key, value in os.environ.items() if not key.startswith("GIT_")}


def git(cwd: Path, *args: str, data: bytes | None = None, env: dict[str, str] | None = None) -> str:
    """`git *args` in `cwd` with `data` on its stdin and `env` (default `ENV`) as its whole environment;
    its stdout, stripped. Raises RuntimeError with git's stderr if it fails."""
    proc = subprocess.run(["git", *args], cwd=cwd, env=env or ENV, input=data, capture_output=True)
    if proc.returncode != 0:
        raise RuntimeError(f"git {' '.join(args)} in {cwd} exited {proc.returncode}: {proc.stderr.decode()}")
    return proc.stdout.decode().strip()
