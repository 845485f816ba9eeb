"""The git command line, for the few things pygit2 cannot do (or does differently from git)."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

from swarmd.errors import GitError


def clean_env(extra: dict[str, str] | None = None) -> dict[str, str]:
    """The environment without inherited GIT_* variables, which a git hook sets and which would
    point every git command at the hook's repository instead of the one we name."""
    env = {key: value for key, value in os.environ.items() if not key.startswith("GIT_")}
    env.update(extra or {})
    return env


def run_git(
    args: list[str], cwd: Path, *, ok_codes: tuple[int, ...] = (0,), env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    argv = ["git", *args]
    proc = subprocess.run(
        argv, cwd=cwd, env=clean_env(env), capture_output=True, text=True, stdin=subprocess.DEVNULL
    )
    if proc.returncode not in ok_codes:
        output = (proc.stderr or proc.stdout).strip()
        raise GitError(f"`{' '.join(argv)}` in {cwd} exited {proc.returncode}: {output}")
    return proc
