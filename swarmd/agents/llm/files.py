"""The file tools: read_file, write_file, edit_file, list_files and search.

Paths are confined by `Workspace.inside`, and files are opened without following a symlink (search meets
symlinks unresolved, and skips them as git grep does) and without waiting: what is not a regular file (a FIFO,
a device) is refused. Workers may not write under `.swarm/` (their landing would be refused); planners write
task files only through create_task and update_task (`planning.py`); both names are matched in any case, as a
case-insensitive filesystem would. A folder that cannot be read is named in the answer of list_files or search.
search stops after reading SEARCH_MAX_BYTES or after SEARCH_S seconds, between files, and says where; a
regular expression that backtracks without end on one line is not interrupted.
"""

from __future__ import annotations

import errno
import fnmatch
import os
import re
import stat
import time
from collections.abc import Iterator
from pathlib import Path

from swarmd.agents.llm.exceptions import ToolError
from swarmd.agents.llm.workspace import Workspace, folded
from swarmd.layout import SWARM_DIR, TASKS_DIR
from swarmd.tasks import Role

READ_MAX_BYTES = 20 * 1024 * 1024  # read_file and edit_file refuse bigger files; search skips them
SNIFF_BYTES = 8000  # a NUL byte in the first 8000 bytes makes a file binary, as git decides
MAX_LISTED = 500
MAX_MATCHES = 200
MAX_MATCH_CHARS = 300
SEARCH_MAX_BYTES = 200 * 1024 * 1024  # search reads no more files once it has read this much
SEARCH_S = 30.0  # ... or once it has searched this long


def read_file(ws: Workspace, path: str, start_line: int | None = None, end_line: int | None = None) -> str:
    real = ws.inside(path)
    lines = _text(real, path).split("\n")
    if lines[-1] == "":
        lines.pop()
    total = len(lines)
    if not total:
        return f"{ws.show(real)} is empty"
    start = 1 if start_line is None else start_line
    end = total if end_line is None else min(end_line, total)
    if not 1 <= start <= total:
        raise ToolError(f"{path}: start_line {start} is outside the file, which has {total} lines")
    if end < start:
        raise ToolError(f"{path}: end_line {end_line} is before start_line {start}")
    budget = ws.output_limit - 200
    shown: list[str] = []
    used = 0
    for number in range(start, end + 1):
        line = f"{number:6}\t{lines[number - 1]}"
        if used + len(line) > budget:
            if not shown:  # one line longer than a whole answer
                shown.append(f"{line[:budget]} [... cut: line {number} is {len(line):,} characters long]")
                number += 1
            if number <= end:
                shown.append(f"[lines {start}-{number - 1} of {total} shown; more would not fit in one answer. "
                             f"Read on with start_line={number}]")
            break
        shown.append(line)
        used += len(line) + 1
    return "\n".join(shown)


def write_file(ws: Workspace, path: str, content: str) -> str:
    real = _writable(ws, path)
    data = content.encode()
    try:
        real.parent.mkdir(parents=True, exist_ok=True)
        _write(real, path, data, os.O_CREAT)
    except OSError as exc:
        raise ToolError(f"{path}: could not write it: {exc.strerror}") from None
    return f"wrote {len(data)} bytes to {ws.show(real)}" + _planner_note(ws)


def edit_file(ws: Workspace, path: str, old: str, new: str) -> str:
    real = _writable(ws, path)
    if not old:
        raise ToolError("`old` is empty; give the exact text to replace (to create a file, use write_file)")
    text = _text(real, path)
    count = text.count(old)
    if count == 0:
        hint = " (it does occur with other whitespace around it)" if old.strip() and old.strip() in text else ""
        raise ToolError(f"{path}: `old` matched 0 times{hint}; it must be the file's text exactly, with its "
                        "whitespace and indentation: read_file the part again and copy it")
    if count > 1:
        at, starts = -1, []
        for _ in range(min(count, 10)):
            at = text.index(old, at + 1)
            starts.append(str(text.count("\n", 0, at) + 1))
        raise ToolError(f"{path}: `old` matched {count} times (at lines {', '.join(starts)}); "
                        "include more of the lines around it so that it matches exactly once")
    line = text.count("\n", 0, text.index(old)) + 1
    try:
        _write(real, path, text.replace(old, new, 1).encode(), 0)
    except OSError as exc:
        raise ToolError(f"{path}: could not write it: {exc.strerror}") from None
    return f"edited {ws.show(real)} at line {line}: {_lines(old)} replaced by {_lines(new)}" + _planner_note(ws)


def list_files(ws: Workspace, path: str = ".", pattern: str | None = None) -> str:
    real = _existing(ws, path)
    unread: list[str] = []
    found = sorted(show for show, _ in _files(ws, real, unread) if _matches(show, pattern))
    if not found:
        return f"no files{f' matching {pattern}' if pattern else ''} under {ws.show(real) or '.'}{_left_out(unread)}"
    more = len(found) - MAX_LISTED
    return "\n".join(found[:MAX_LISTED]) + (f"\n... {more} more (narrow it with path or pattern)" if more > 0 else "") \
        + _left_out(unread)


def search(ws: Workspace, pattern: str, path: str = ".", glob: str | None = None) -> str:
    try:
        regex = re.compile(pattern)
    except (re.error, RecursionError, OverflowError) as exc:  # nested too deeply, a repeat count too big
        raise ToolError(f"bad regular expression {pattern!r}: {exc}") from None
    real = _existing(ws, path)
    hits: list[str] = []
    unread: list[str] = []
    count, left, deadline, stopped = 0, SEARCH_MAX_BYTES, time.monotonic() + SEARCH_S, ""
    for show, file in _files(ws, real, unread):
        if left <= 0 or time.monotonic() > deadline:
            why = f"reading {SEARCH_MAX_BYTES >> 20} MB" if left <= 0 else f"{SEARCH_S:g} s"
            stopped = f"\n[search stopped after {why}: {show} and the files after it were not searched; " \
                      "narrow it with path or glob]"
            break
        if not _matches(show, glob):
            continue
        try:
            data = _contents(file, show)  # a symlink is not followed but skipped, as git grep does
        except ToolError:
            continue
        left -= len(data)
        if b"\0" in data[:SNIFF_BYTES]:
            continue
        for number, line in enumerate(data.decode("utf-8", "replace").split("\n"), 1):
            if regex.search(line):
                count += 1
                if count <= MAX_MATCHES:
                    hits.append(f"{show}:{number}: {line[:MAX_MATCH_CHARS]}")
    if not hits:
        where = f"{ws.show(real) or '.'}{f' in files matching {glob}' if glob else ''}"
        return f"no matches for {pattern!r} under {where}{stopped}{_left_out(unread)}"
    more = count - MAX_MATCHES
    return "\n".join(hits) + (f"\n... {more} more matches (narrow it with path or glob)" if more > 0 else "") \
        + stopped + _left_out(unread)


def _writable(ws: Workspace, path: str) -> Path:
    real = ws.inside(path)
    parts = folded(real.relative_to(ws.root).parts)  # `.SWARM` is `.swarm` on a case-insensitive filesystem
    if ws.role == Role.WORKER and parts[:1] == (SWARM_DIR,):
        raise ToolError(f"{path}: a worker may not change anything under {SWARM_DIR}/ (its landing would be "
                        "refused); change the code only")
    if ws.role == Role.PLANNER and parts[:2] == tuple(TASKS_DIR.split("/")):
        raise ToolError(f"{path}: write task files with create_task and update_task, which check them first")
    return real


def _existing(ws: Workspace, path: str) -> Path:
    real = ws.inside(path)
    try:
        os.stat(real)
    except (FileNotFoundError, NotADirectoryError):
        raise ToolError(f"{path}: no such file or folder") from None
    except OSError as exc:  # a name too long, a folder on the way the agent may not enter
        raise ToolError(f"{path}: cannot look at it: {exc.strerror}") from None
    return real


def _planner_note(ws: Workspace) -> str:
    if ws.role != Role.PLANNER:
        return ""
    return ("\nnote: a planner's landing may change task files only; remove this file before you finish, "
            "or the landing is refused")


def _lines(text: str) -> str:
    count = text.count("\n") + (not text.endswith("\n"))
    return "1 line" if count == 1 else f"{count} lines"


def _contents(real: Path, path: str) -> bytes:
    """The bytes of a regular file, opened without following a symlink (the path is resolved already)."""
    try:
        fd = os.open(real, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK)
    except FileNotFoundError:
        raise ToolError(f"{path}: no such file (list_files shows what there is)") from None
    except OSError as exc:
        raise ToolError(f"{path}: cannot open it: {exc.strerror}") from None
    try:
        info = os.fstat(fd)
        if stat.S_ISDIR(info.st_mode):
            raise ToolError(f"{path}: a folder; list_files shows what is in it")
        if not stat.S_ISREG(info.st_mode):
            raise ToolError(f"{path}: not a regular file")
        if info.st_size > READ_MAX_BYTES:
            raise ToolError(f"{path}: {info.st_size:,} bytes, too big to read here; look at parts of it with "
                            "run (head, sed -n '100,200p', grep -n)")
        chunks = []
        while chunk := os.read(fd, 1 << 20):
            chunks.append(chunk)
        return b"".join(chunks)
    finally:
        os.close(fd)


def _text(real: Path, path: str) -> str:
    data = _contents(real, path)
    if b"\0" in data[:SNIFF_BYTES]:
        raise ToolError(f"{path}: a binary file; this tool shows text only (try run with `file` or `xxd | head`)")
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ToolError(f"{path}: not UTF-8 text (byte 0x{data[exc.start]:02x} at offset {exc.start}); this tool "
                        "shows UTF-8 text only (try run with `file` or `iconv`)") from None


def _write(real: Path, path: str, data: bytes, create: int) -> None:
    """Write a regular file in place (keeping its mode), refusing a symlink as the last component. Opened
    without waiting, and cut only once it is known to be a regular file: a FIFO would wait for a reader."""
    try:
        fd = os.open(real, os.O_WRONLY | os.O_NOFOLLOW | os.O_NONBLOCK | create, 0o666)
    except OSError as exc:
        if exc.errno == errno.ENXIO:  # a FIFO nothing reads from, a socket
            raise ToolError(f"{path}: not a regular file") from None
        raise
    with os.fdopen(fd, "wb") as out:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            raise ToolError(f"{path}: not a regular file")
        os.ftruncate(fd, 0)
        out.write(data)


def _files(ws: Workspace, real: Path, unread: list[str]) -> Iterator[tuple[str, Path]]:
    """The files at or under `real` (symlinks among them, never followed), `.git` left out in any case; each
    folder that cannot be read (no permission, a path too long) is added to `unread`, with why."""
    if not os.path.isdir(real):
        yield ws.show(real), real
        return

    def skip(exc: OSError) -> None:
        unread.append(f"{ws.show(Path(exc.filename)) or '.'} ({exc.strerror})")

    for folder, dirs, files in os.walk(real, onerror=skip):
        dirs[:] = sorted(d for d in dirs if d.casefold() != ".git")
        base = Path(folder)
        links = [d for d in dirs if os.path.islink(base / d)]  # a symlinked folder is an entry, not walked
        for name in sorted(files + links):
            if name.casefold() != ".git":
                yield ws.show(base / name), base / name


def _left_out(unread: list[str]) -> str:
    if not unread:
        return ""
    more = f" and {len(unread) - 3} more" if len(unread) > 3 else ""
    return f"\n[left out, as they could not be read: {'; '.join(unread[:3])}{more}]"


def _matches(show: str, pattern: str | None) -> bool:
    if pattern is None:
        return True
    return fnmatch.fnmatchcase(show if "/" in pattern else show.rpartition("/")[2], pattern)
