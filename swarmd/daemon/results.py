"""An agent's result file, read as untrusted input: whatever an agent leaves at `SWARM_RESULT_FILE`
(bad bytes, a folder, a symlink, a FIFO, 50 MB, YAML of the wrong shape) is a reason its attempt failed,
never an error of the daemon's."""

from __future__ import annotations

import os
import stat
from pathlib import Path
from typing import Any, TypeVar

from pydantic import BaseModel

from swarmd import yamlio
from swarmd.errors import ValidationError
from swarmd.layout import MAX_FILE_BYTES

M = TypeVar("M", bound=BaseModel)


class BadResult(Exception):
    """Why a result file cannot be used; the message names the file."""


def read_result(path: Path, model: type[M]) -> M | None:
    """The agent's result, or None when it wrote none (no file, or an empty one); BadResult otherwise."""
    data = _read_bytes(path)
    if data is None or not data.strip():
        return None
    try:
        loaded = yamlio.load(data, str(path))
        return None if loaded is None else yamlio.parse(model, loaded, str(path))
    except ValidationError as exc:
        raise BadResult("; ".join(exc.problems)) from None
    except RecursionError:
        raise BadResult(f"{path}: nested too deeply to read") from None


def _read_bytes(path: Path) -> bytes | None:
    try:
        info = os.lstat(path)
    except FileNotFoundError:
        return None
    except OSError as exc:
        raise BadResult(f"{path}: cannot be read: {exc.strerror}") from None
    _check_kind(path, info)
    try:
        # O_NOFOLLOW and O_NONBLOCK: the file may have been swapped for a symlink or a FIFO since.
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK)
    except OSError as exc:
        raise BadResult(f"{path}: cannot be read: {exc.strerror}") from None
    with os.fdopen(fd, "rb") as handle:
        _check_kind(path, os.fstat(handle.fileno()))
        data = handle.read(MAX_FILE_BYTES + 1)
    if len(data) > MAX_FILE_BYTES:
        raise BadResult(_too_big(path, f"more than {MAX_FILE_BYTES:,} bytes"))
    return data


def _check_kind(path: Path, info: os.stat_result) -> None:
    if stat.S_ISLNK(info.st_mode):
        raise BadResult(f"{path}: a symlink; write the result as a regular file")
    if not stat.S_ISREG(info.st_mode):
        raise BadResult(f"{path}: {_kind(info.st_mode)}, not a regular file; write the result as a YAML file")
    if info.st_size > MAX_FILE_BYTES:
        raise BadResult(_too_big(path, f"{info.st_size:,} bytes"))


def _too_big(path: Path, size: str) -> str:
    return f"{path}: {size}, over the {MAX_FILE_BYTES:,}-byte limit for a result file"


def _kind(mode: int) -> str:
    kinds: dict[Any, str] = {stat.S_ISDIR: "a folder", stat.S_ISFIFO: "a FIFO", stat.S_ISSOCK: "a socket",
                             stat.S_ISCHR: "a character device", stat.S_ISBLK: "a block device"}
    return next((name for test, name in kinds.items() if test(mode)), "a special file")
