"""The real coding-agent CLIs the backend tests drive, each installed at a pinned version into its own
folder of a cache outside the checkout, so that their pins never meet swarmd's:

    $SWARMD_CLI_CACHE (default ~/.cache/swarmd-clis)/
        claude-code-2.1.197 -> .build-claude-code-2.1.197-XXXX/   npm install --prefix
        codex-0.171.0       -> .build-codex-0.171.0-XXXX/         npm install --prefix
        aider-0.86.2        -> .build-aider-0.86.2-XXXX/          venv/ with pip install aider-chat
        qwen-code-0.15.10   -> .build-qwen-code-0.15.10-XXXX/     npm install --prefix

An install is built in a fresh `.build-*` folder and published by renaming a symlink over the final name
(a venv cannot be moved: its scripts name their own Python), so a killed install is never taken for a done
one; a lock per CLI lets two processes install at once. In tests: `cli_path("codex")`, which installs
what is missing and raises InstallError (with the command and the tail of its output) if it cannot.
Before the tests, as CI does: `python tests/clis.py install [NAME...]`.
"""

from __future__ import annotations

import os
import shutil
import stat
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from filelock import FileLock

# The HOME the process started with: test fixtures point HOME at a temporary folder, the cache stays put.
_HOME = Path.home()
INSTALL_TIMEOUT = 1200  # seconds per install command; aider's venv takes about 1.5 min on a quiet machine


@dataclass(frozen=True)
class Cli:
    name: str  # swarmd's backend name
    version: str
    package: str  # on npm or PyPI
    manager: str  # "npm" or "pip"
    command: str  # the executable's name

    @property
    def folder(self) -> str:
        return f"{self.name}-{self.version}"

    def executable(self, root: Path) -> Path:
        if self.manager == "npm":
            return root / "node_modules" / ".bin" / self.command
        return root / "venv" / "bin" / self.command


CLIS = {cli.name: cli for cli in (
    Cli("claude-code", "2.1.197", "@anthropic-ai/claude-code", "npm", "claude"),
    Cli("codex", "0.171.0", "@openai/codex", "npm", "codex"),
    Cli("aider", "0.86.2", "aider-chat", "pip", "aider"),
    # The newest whose package.json asks for no more than Node.js 20; 0.21 and later ask for 22.
    Cli("qwen-code", "0.15.10", "@qwen-code/qwen-code", "npm", "qwen"),
)}


class InstallError(Exception):
    """A CLI could not be installed; the message names the command and ends with its output."""


def cache_dir() -> Path:
    return Path(os.environ.get("SWARMD_CLI_CACHE") or _HOME / ".cache" / "swarmd-clis")


def cli_path(name: str, cache: Path | None = None) -> Path:
    """The executable of CLI `name` at its pinned version, installed first if it is not yet."""
    cli = CLIS[name]
    cache = cache or cache_dir()
    done = cache / cli.folder
    if done.exists():  # the symlink is renamed into place only once the install is whole
        return cli.executable(done)
    cache.mkdir(parents=True, exist_ok=True)
    with FileLock(str(cache / f".{cli.folder}.lock")):
        if not done.exists():  # another process may have installed it while we waited
            _install(cli, cache)
    return cli.executable(done)


def _install(cli: Cli, cache: Path) -> None:
    for old in cache.glob(f".build-{cli.folder}-*"):  # left by an install that was killed
        shutil.rmtree(old, ignore_errors=True)
    build = Path(tempfile.mkdtemp(prefix=f".build-{cli.folder}-", dir=cache))
    build.chmod(0o755)  # mkdtemp's 0700 would hide it from other users of a shared cache
    try:
        if cli.manager == "npm":
            _run(["npm", "install", "--prefix", str(build), "--no-audit", "--no-fund", "--loglevel=error",
                  f"{cli.package}@{cli.version}"], cli)
        else:
            _run([sys.executable, "-m", "venv", str(build / "venv")], cli)
            _run([str(build / "venv/bin/pip"), "install", "--quiet", "--disable-pip-version-check",
                  f"{cli.package}=={cli.version}"], cli)
        _run([str(cli.executable(build)), "--version"], cli)  # it runs, or the install is not done
        link = cache / f".link-{cli.folder}-{os.getpid()}"
        link.unlink(missing_ok=True)
        link.symlink_to(build.name)
        os.replace(link, cache / cli.folder)
    except BaseException:
        shutil.rmtree(build, ignore_errors=True)
        raise


def _run(argv: list[str], cli: Cli) -> None:
    shown = " ".join(argv)
    try:
        proc = subprocess.run(argv, stdin=subprocess.DEVNULL, capture_output=True, text=True, errors="replace",
                              timeout=INSTALL_TIMEOUT, env={**os.environ, "HOME": str(_HOME)})
    except FileNotFoundError:
        raise InstallError(f"cannot install {cli.name} {cli.version}: {argv[0]} not found; "
                           f"install {'Node.js and npm' if argv[0] == 'npm' else argv[0]} first") from None
    except subprocess.TimeoutExpired:
        raise InstallError(f"cannot install {cli.name} {cli.version}: `{shown}` ran past {INSTALL_TIMEOUT} s") from None
    if proc.returncode != 0:
        tail = "\n".join((proc.stdout + proc.stderr).strip().splitlines()[-30:])
        raise InstallError(f"cannot install {cli.name} {cli.version}: `{shown}` exited {proc.returncode}:\n{tail}")


def _size(path: Path) -> int:
    """Bytes on disk, each file once (npm hardlinks Claude Code's binary into two packages)."""
    files = {(info.st_dev, info.st_ino): info.st_size for info in (p.lstat() for p in path.rglob("*"))
             if stat.S_ISREG(info.st_mode)}
    return sum(files.values())


def main(argv: list[str]) -> int:
    if not argv or argv[0] != "install" or not set(argv[1:]) <= set(CLIS):
        print(f"usage: python tests/clis.py install [{' '.join(CLIS)}]", file=sys.stderr)
        return 2
    cache = cache_dir()
    for name in argv[1:] or list(CLIS):
        started = time.monotonic()
        fresh = not (cache / CLIS[name].folder).exists()
        try:
            path = cli_path(name, cache)
        except InstallError as exc:
            print(f"clis: {exc}", file=sys.stderr)
            return 1
        took = f"installed in {time.monotonic() - started:.0f} s" if fresh else "already installed"
        size = _size((cache / CLIS[name].folder).resolve()) / 1e6
        print(f"clis: {name} {CLIS[name].version}: {path} ({took}, {size:.0f} MB)", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
