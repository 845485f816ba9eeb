"""The git command line, for the few things pygit2 cannot do (or does differently from git)."""

from __future__ import annotations

import functools
import os
import re
import subprocess
from pathlib import Path

from swarmd.errors import GitError, SwarmError

MIN_GIT = (2, 38)  # `git merge-tree --write-tree`


# GIT_* variables that say how git behaves, not which repository it works on: they pass through.
_KEPT = re.compile(r"GIT_(CONFIG_(NOSYSTEM|GLOBAL|SYSTEM|COUNT|KEY_\d+|VALUE_\d+)|EXEC_PATH|SSH.*|ASKPASS|"
                   r"SSL_.*|HTTP_.*|ALLOW_PROTOCOL|(AUTHOR|COMMITTER)_(NAME|EMAIL|DATE))")


def clean_env(extra: dict[str, str] | None = None) -> dict[str, str]:
    """The environment without the GIT_* variables a git hook sets (GIT_DIR, GIT_INDEX_FILE, ...), which
    would point every git command at the hook's repository instead of the one we name."""
    env = {key: value for key, value in os.environ.items() if not key.startswith("GIT_") or _KEPT.fullmatch(key)}
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


@functools.cache
def require_git() -> None:
    """Fail early, and say why, on a git too old for what swarmd runs."""
    try:
        out = subprocess.run(["git", "version"], capture_output=True, text=True, env=clean_env()).stdout
    except FileNotFoundError:
        raise SwarmError("git is not on the PATH; install git 2.38 or newer") from None
    found = re.search(r"(\d+)\.(\d+)", out)
    if found is None or (int(found[1]), int(found[2])) < MIN_GIT:
        raise SwarmError(f"needs git {MIN_GIT[0]}.{MIN_GIT[1]} or newer; this is {out.strip() or 'unknown'}")
