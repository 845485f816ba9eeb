"""The built-in agent's tools, on real folders, a real git repository and real subprocesses."""

from __future__ import annotations

import contextlib
import json
import os
import select
import signal
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from gitutil import git, write

from swarmd.agents.llm.shell import run
from swarmd.agents.llm.tools import Finished, ToolError, Workspace, execute, specs
from swarmd.store import dump_task, parse_task
from swarmd.tasks import Kind, Status, Task

SECRET = "the secret outside\n"


@pytest.fixture
def root(tmp_path: Path) -> Path:
    """A worktree (a git repository) with a few files, next to a folder outside it that it has symlinks to."""
    root = tmp_path / "wt"
    root.mkdir()
    git(root, "init", "-q", "-b", "main")
    write(root, {"README.md": "hello\n", "src/app.py": "print('hi')\n", "src/util.py": "def util():\n    return 1\n"})
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "secret.txt").write_text(SECRET)
    (root / "out-link").symlink_to(outside / "secret.txt")
    (root / "out-dir").symlink_to(outside)
    (root / "dangling").symlink_to(outside / "new.txt")
    (root / "in-link").symlink_to("src/app.py")
    return root


def workspace(root: Path, role: str = "worker", task_id: str = "1", **kwargs: Any) -> Workspace:
    return Workspace(root=root, env={"PATH": os.environ["PATH"]}, role=role, task_id=task_id, **kwargs)


def call(ws: Workspace, name: str, **arguments: Any) -> str:
    return execute(ws, name, json.dumps(arguments))


def refused(ws: Workspace, name: str, **arguments: Any) -> str:
    with pytest.raises(ToolError) as caught:
        call(ws, name, **arguments)
    return str(caught.value)


# -- confinement -------------------------------------------------------------------------------------

ESCAPES = {
    "dot-dot": "../outside/secret.txt",
    "absolute": "{outside}/secret.txt",
    "symlink to a file outside": "out-link",
    "symlinked folder outside": "out-dir/secret.txt",
    "symlink to a folder outside": "out-dir",
    "dangling symlink to outside": "dangling",
    "git config": ".git/config",
}
TOOLS = {
    "read_file": lambda path: {"path": path},
    "write_file": lambda path: {"path": path, "content": "overwritten\n"},
    "edit_file": lambda path: {"path": path, "old": "secret", "new": "gotcha"},
    "list_files": lambda path: {"path": path},
    "search": lambda path: {"pattern": "secret|core", "path": path},
}


@pytest.mark.parametrize("tool", TOOLS)
@pytest.mark.parametrize("escape", ESCAPES)
def test_no_tool_reaches_outside_the_worktree_or_into_git(root: Path, tool: str, escape: str) -> None:
    outside = root.parent / "outside"
    config = (root / ".git/config").read_text()
    path = ESCAPES[escape].format(outside=outside)
    message = refused(workspace(root), tool, **TOOLS[tool](path))
    assert "outside the worktree" in message or "under .git" in message, message
    assert SECRET not in message
    assert (outside / "secret.txt").read_text() == SECRET
    assert sorted(p.name for p in outside.iterdir()) == ["secret.txt"], "nothing was created outside"
    assert (root / ".git/config").read_text() == config


@pytest.mark.parametrize("tool", ["read_file", "list_files", "search"])
def test_system_files_are_out_of_reach(root: Path, tool: str) -> None:
    assert "outside the worktree" in refused(workspace(root), tool, **TOOLS[tool]("/etc/passwd"))


def test_the_git_file_of_a_linked_worktree_cannot_be_written(root: Path) -> None:
    git(root, "add", "-A")
    git(root, "commit", "-q", "-m", "first")
    linked = root.parent / "linked"
    git(root, "worktree", "add", "-q", str(linked))
    pointer = (linked / ".git").read_text()
    ws = workspace(linked)
    assert "under .git" in refused(ws, "write_file", path=".git", content="gitdir: /tmp/elsewhere\n")
    assert "under .git" in refused(ws, "edit_file", path=".git", old="gitdir", new="nope")
    assert (linked / ".git").read_text() == pointer
    assert ".git" not in call(ws, "list_files").split("\n")


def test_git_and_swarm_are_matched_in_any_case(root: Path) -> None:
    """On a case-insensitive filesystem (macOS's default) `.GIT/config` is `.git/config`."""
    write(root, {".GIT/config": "[core]\n", ".Swarm/tasks/1.yaml": "id: '1'\n"})
    ws = workspace(root)
    for path in [".GIT/config", ".Git/hooks/pre-commit", "src/.git"]:
        assert "under .git" in refused(ws, "write_file", path=path, content="x"), path
    assert "under .git" in refused(ws, "read_file", path=".GIT/config")
    assert "a worker may not change anything under .swarm/" in refused(ws, "edit_file", path=".Swarm/tasks/1.yaml",
                                                                       old="id", new="di")
    assert "a worker may not change anything under .swarm/" in refused(ws, "write_file", path=".SWARM/x", content="")
    planner = workspace(root, role="planner", task_id="root")
    assert "create_task and update_task" in refused(planner, "write_file", path=".swarm/TASKS/4.yaml", content="")
    assert not any(line.casefold().startswith(".git") for line in call(ws, "list_files").split("\n"))
    assert (root / ".GIT/config").read_text() == "[core]\n" and not (root / ".SWARM").exists()


def test_a_symlink_that_stays_inside_is_followed(root: Path) -> None:
    ws = workspace(root)
    assert "print('hi')" in call(ws, "read_file", path="in-link")
    assert call(ws, "write_file", path="in-link", content="print('bye')\n") == "wrote 13 bytes to src/app.py"
    assert (root / "src/app.py").read_text() == "print('bye')\n" and (root / "in-link").is_symlink()
    assert "README.md" in call(ws, "list_files", path=str(root)), "an absolute path inside the worktree is fine"


def test_a_worker_may_not_write_under_swarm(root: Path) -> None:
    write(root, {".swarm/tasks/1.yaml": "id: '1'\n"})
    ws = workspace(root)
    for tool, arguments in [("write_file", {"content": "x"}), ("edit_file", {"old": "id", "new": "di"})]:
        assert "a worker may not change anything under .swarm/" in refused(ws, tool, path=".swarm/tasks/1.yaml", **arguments)
    assert (root / ".swarm/tasks/1.yaml").read_text() == "id: '1'\n"
    assert "id: '1'" in call(ws, "read_file", path=".swarm/tasks/1.yaml"), "reading is fine"


def test_a_planner_writes_task_files_through_its_tools_only(root: Path) -> None:
    ws = workspace(root, role="planner", task_id="root")
    assert "create_task and update_task" in refused(ws, "write_file", path=".swarm/tasks/4.yaml", content="id: '4'\n")
    assert not (root / ".swarm/tasks/4.yaml").exists()
    answer = call(ws, "write_file", path="scratch.txt", content="x")
    assert answer.startswith("wrote 1 bytes to scratch.txt") and "landing" in answer, "told what its landing allows"
    assert call(workspace(root, role="judge", task_id="root"), "write_file", path="n.txt", content="").startswith("wrote")


# -- reading, writing, editing -----------------------------------------------------------------------


def test_read_file_numbers_lines_and_takes_a_range(root: Path) -> None:
    write(root, {"five.txt": "one\ntwo\nthree\nfour\nfive\n"})
    ws = workspace(root)
    assert call(ws, "read_file", path="five.txt") == "\n".join(
        f"{n:6}\t{word}" for n, word in enumerate(["one", "two", "three", "four", "five"], 1))
    assert call(ws, "read_file", path="five.txt", start_line=2, end_line=3) == "     2\ttwo\n     3\tthree"
    assert call(ws, "read_file", path="five.txt", start_line=5, end_line=99) == "     5\tfive"
    assert "has 5 lines" in refused(ws, "read_file", path="five.txt", start_line=6)
    assert "no such file" in refused(ws, "read_file", path="missing.txt")
    assert "a folder" in refused(ws, "read_file", path="src")


def test_read_file_refuses_binary_and_non_utf8_files(root: Path) -> None:
    (root / "blob.bin").write_bytes(b"\x89PNG\r\n\x1a\n\x00\x00")
    (root / "latin1.txt").write_bytes(b"caf\xe9\n")
    ws = workspace(root)
    assert "a binary file" in refused(ws, "read_file", path="blob.bin")
    assert "not UTF-8 text (byte 0xe9 at offset 3)" in refused(ws, "read_file", path="latin1.txt")


def test_a_fifo_is_refused_without_waiting_for_a_writer(root: Path) -> None:
    os.mkfifo(root / "pipe")
    ws = workspace(root)
    with within(60):
        assert "not a regular file" in refused(ws, "read_file", path="pipe")
        assert "not a regular file" in refused(ws, "edit_file", path="pipe", old="a", new="b")
        assert call(ws, "search", pattern="x", path="pipe").startswith("no matches"), "search skips it"
        assert refused(ws, "write_file", path="pipe", content="x") == "pipe: not a regular file", "nor for a reader"


@contextlib.contextmanager
def within(seconds: float) -> Iterator[None]:
    """Fail, instead of hanging the run, if the block takes longer than `seconds` (a blocked open included)."""
    def late(signum: int, frame: Any) -> None:
        raise AssertionError(f"still waiting after {seconds:g} s")

    previous = signal.signal(signal.SIGALRM, late)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)


def test_read_file_cuts_a_long_file_and_says_where_to_go_on(root: Path) -> None:
    write(root, {"long.txt": "".join(f"line {n}\n" for n in range(1, 1001)), "wide.txt": "x" * 5000 + "\n"})
    ws = workspace(root, output_limit=2000)
    first = call(ws, "read_file", path="long.txt")
    assert len(first) <= 2000 and first.startswith("     1\tline 1\n")
    shown = int(first.rsplit("\n", 2)[-2].split("\t")[0])
    assert "of 1000 shown" in first and f"start_line={shown + 1}" in first
    assert call(ws, "read_file", path="long.txt", start_line=shown + 1).startswith(f"{shown + 1:6}\tline {shown + 1}\n")
    wide = call(ws, "read_file", path="wide.txt")
    assert len(wide) <= 2000 and "line 1 is 5,007 characters long" in wide


def test_write_file_creates_folders_and_counts_bytes(root: Path) -> None:
    answer = call(workspace(root), "write_file", path="a/b/c.txt", content="café\n")
    assert answer == "wrote 6 bytes to a/b/c.txt"
    assert (root / "a/b/c.txt").read_text() == "café\n"


def test_edit_file_replaces_text_that_occurs_exactly_once(root: Path) -> None:
    write(root, {"twice.py": "x = 1\ny = 2\nx = 1\n"})
    ws = workspace(root)
    assert call(ws, "edit_file", path="src/util.py", old="return 1", new="return 2") == \
        "edited src/util.py at line 2: 1 line replaced by 1 line"
    assert (root / "src/util.py").read_text() == "def util():\n    return 2\n"
    none = refused(ws, "edit_file", path="src/util.py", old="return 3", new="x")
    assert "matched 0 times" in none and "read_file" in none
    assert "matched 0 times (it does occur with other whitespace" in refused(
        ws, "edit_file", path="src/util.py", old="    return 2  ", new="x")
    two = refused(ws, "edit_file", path="twice.py", old="x = 1", new="x = 3")
    assert "matched 2 times (at lines 1, 3)" in two and "more of the lines around it" in two
    assert (root / "twice.py").read_text() == "x = 1\ny = 2\nx = 1\n", "a refused edit changes nothing"
    assert call(ws, "edit_file", path="twice.py", old="x = 1\ny", new="x = 3\ny").startswith("edited twice.py at line 1")


# -- listing and searching ---------------------------------------------------------------------------


def test_list_files_skips_git_and_filters_by_glob(root: Path) -> None:
    ws = workspace(root)
    listed = call(ws, "list_files").split("\n")
    assert {"README.md", "src/app.py", "src/util.py", "out-link", "out-dir"} <= set(listed)
    assert not any(line.startswith(".git") for line in listed)
    assert call(ws, "list_files", path="src") == "src/app.py\nsrc/util.py"
    assert call(ws, "list_files", pattern="*.py") == "src/app.py\nsrc/util.py"
    assert call(ws, "list_files", pattern="src/u*") == "src/util.py"
    assert call(ws, "list_files", pattern="*.rs") == "no files matching *.rs under ."


def test_list_files_is_capped(root: Path) -> None:
    (root / "many").mkdir()
    for n in range(505):
        (root / "many" / f"{n:03}.txt").touch()
    listed = call(workspace(root), "list_files", path="many").split("\n")
    assert len(listed) == 501 and listed[0] == "many/000.txt" and listed[-1].startswith("... 5 more")


def test_search_answers_path_line_text(root: Path) -> None:
    write(root, {"docs/notes.md": "nothing\nreturn of the king\n"})
    (root / "blob.bin").write_bytes(b"return\x00\x01")
    ws = workspace(root)
    assert call(ws, "search", pattern=r"return \d") == "src/util.py:2:     return 1"
    assert set(call(ws, "search", pattern="return").split("\n")) == {"src/util.py:2:     return 1",
                                                                      "docs/notes.md:2: return of the king"}
    assert call(ws, "search", pattern="return", glob="*.md") == "docs/notes.md:2: return of the king"
    assert call(ws, "search", pattern="return", path="src") == "src/util.py:2:     return 1"
    assert call(ws, "search", pattern="secret|repositoryformatversion").startswith("no matches"), \
        "symlinks are not followed and .git is skipped"
    assert "bad regular expression" in refused(ws, "search", pattern="def (")


# -- calls the model gets wrong ----------------------------------------------------------------------


def test_bad_calls_are_told_what_is_wrong(root: Path) -> None:
    ws = workspace(root)
    with pytest.raises(ToolError, match="not valid JSON"):
        execute(ws, "read_file", '{"path": "README.md"')
    with pytest.raises(ToolError, match="must be a JSON object"):
        execute(ws, "read_file", '["README.md"]')
    unknown = refused(ws, "read_files", path="README.md")
    assert "no tool 'read_files'" in unknown and "read_file, write_file, edit_file" in unknown
    assert "no tool 'create_task'" in refused(ws, "create_task", id="2"), "a worker has no planner tools"
    assert "`path` is required" in refused(ws, "read_file")
    assert "`path` must be text" in refused(ws, "read_file", path=["README.md"])
    assert "`start_line` must be a whole number" in refused(ws, "read_file", path="README.md", start_line="2")
    wrong = refused(ws, "read_file", paht="README.md")
    assert "unknown argument `paht`" in wrong and "`path` is required" in wrong and "read_file(path, start_line?" in wrong
    assert execute(ws, "list_files", "") == call(ws, "list_files"), "no arguments at all is an empty object"


LONE = "\ud83d"  # half of an emoji: json.loads makes it from the escape \\ud83d alone, and UTF-8 has no bytes for it
UNENCODABLE = {  # tool, role, arguments, the argument named, the character it is at
    "file content": ("write_file", "worker", {"path": "new.txt", "content": f"smile {LONE}"}, "content", 7),
    "a path": ("read_file", "worker", {"path": f"src/{LONE}.py"}, "path", 5),
    "a path to write": ("write_file", "worker", {"path": f"{LONE}.txt", "content": "x"}, "path", 1),
    "an edit": ("edit_file", "worker", {"path": "README.md", "old": "hello", "new": LONE}, "new", 1),
    "a command": ("run", "worker", {"command": f"echo {LONE}"}, "command", 6),
    "a pattern": ("search", "worker", {"pattern": LONE}, "pattern", 1),
    "a glob": ("list_files", "worker", {"pattern": f"*{LONE}"}, "pattern", 2),
    "a summary": ("finish", "worker", {"summary": f"done {LONE}"}, "summary", 6),
    "a note": ("finish", "judge", {"verdict": "stop", "summary": "ok", "notes": ["fine", LONE]}, "notes[1]", 1),
    "a task title": ("create_task", "planner", {"id": "4", "title": LONE, "kind": "work", "description": "d"},
                     "title", 1),
    "a need": ("update_task", "planner", {"id": "2", "needs": [f"1{LONE}"]}, "needs[0]", 2),
}


@pytest.mark.parametrize("case", UNENCODABLE)
def test_text_with_a_lone_surrogate_is_refused_by_name(root: Path, case: str) -> None:
    tool, role, arguments, key, at = UNENCODABLE[case]
    ws = planner(root) if role == "planner" else workspace(root, role=role, task_id="1" if role == "worker" else "root")
    before = {path: path.read_bytes() for path in root.rglob("*") if path.is_file() and ".git" not in path.parts}
    message = refused(ws, tool, **arguments)
    assert f"`{key}` is not valid Unicode text: a lone surrogate at character {at}" in message, message
    assert message.encode(), "the answer itself can be sent"
    after = {path: path.read_bytes() for path in root.rglob("*") if path.is_file() and ".git" not in path.parts}
    assert after == before, "nothing was written"


def test_a_nul_is_refused_in_paths_commands_and_patterns(root: Path) -> None:
    ws = workspace(root)
    assert "`command` holds a NUL character at character 6" in refused(ws, "run", command="echo \0 hi")
    assert "`path` holds a NUL character at character 4" in refused(ws, "read_file", path="src\0/app.py")
    assert "`pattern` holds a NUL character at character 1" in refused(ws, "search", pattern="\0")
    assert call(ws, "write_file", path="nul.txt", content="a\0b") == "wrote 3 bytes to nul.txt", "content may"


def test_run_refuses_a_command_bash_cannot_be_given(root: Path) -> None:
    ws = workspace(root)
    for command in ["echo \0", f"echo {LONE}"]:  # when a caller other than `execute` passes one
        with pytest.raises(ToolError, match="could not start bash"):
            run(ws, command)


def test_an_unknown_argument_is_quoted_so_that_the_answer_can_be_sent(root: Path) -> None:
    message = refused(workspace(root), "read_file", path="README.md", **{f"x{LONE}": 1})
    assert "unknown argument `x\\ud83d`" in message and message.encode()


@pytest.mark.parametrize("raw", [
    '{"path": "README.md", "start_line": 1' + "0" * 5000 + "}",  # past Python's 4,300 digits
    '{"path": "README.md", "x": ' + "[" * 100_000 + "]" * 100_000 + "}",
    '{"path": ' * 100_000,
])
def test_json_python_cannot_read_is_refused(root: Path, raw: str) -> None:
    with pytest.raises(ToolError, match="the arguments of read_file are not valid JSON"):
        execute(workspace(root), "read_file", raw)


@pytest.mark.parametrize("pattern", ["(" * 5000 + ")" * 5000, "a{4294967296}"])
def test_search_refuses_a_regular_expression_python_cannot_compile(root: Path, pattern: str) -> None:
    assert "bad regular expression" in refused(workspace(root), "search", pattern=pattern)


@pytest.mark.parametrize("tool", TOOLS)
def test_a_name_too_long_is_refused(root: Path, tool: str) -> None:
    path = "a" * 300
    message = refused(workspace(root), tool, **TOOLS[tool](path))
    assert message.startswith(f"{path}: ") and "File name too long" in message, message


def test_a_folder_that_cannot_be_read_is_named_and_the_rest_listed(root: Path) -> None:
    """A tree deeper than PATH_MAX: its bottom cannot be read through a path, as a folder without permission."""
    write(root, {"deep/top.txt": "needle\n"})
    fd = os.open(root / "deep", os.O_RDONLY)
    try:
        for _ in range(25):
            os.mkdir("d" * 200, dir_fd=fd)
            fd, parent = os.open("d" * 200, os.O_RDONLY, dir_fd=fd), fd
            os.close(parent)
        os.close(os.open("bottom.txt", os.O_WRONLY | os.O_CREAT, dir_fd=fd))
    finally:
        os.close(fd)
    ws = workspace(root)
    listed = call(ws, "list_files", path="deep")
    assert listed.startswith("deep/top.txt\n[left out, as they could not be read: deep/ddd") and \
        listed.endswith("(File name too long)]"), listed[:300]
    found = call(ws, "search", pattern="needle")
    assert found.startswith("deep/top.txt:1: needle\n[left out, as they could not be read: deep/ddd")


def test_unreadable_task_files_are_a_problem_not_a_crash(root: Path) -> None:
    (root / ".swarm").mkdir()
    (root / ".swarm/tasks").write_text("not a folder\n")
    message = refused(workspace(root, role="planner", task_id="root"), "create_task", id="4", **NEW)
    assert message.startswith("nothing was written") and ".swarm/tasks: cannot read it: Not a directory" in message


def test_specs_per_role(root: Path) -> None:
    def names(role: str) -> list[str]:
        return [spec["function"]["name"] for spec in specs(workspace(root, role=role))]

    common = ["read_file", "write_file", "edit_file", "list_files", "search", "run", "finish"]
    assert names("worker") == names("judge") == common
    assert names("planner") == [*common, "create_task", "update_task"]
    for role in ("worker", "judge", "planner"):
        for spec in specs(workspace(root, role=role)):
            assert spec["type"] == "function" and spec["function"]["description"]
            parameters = spec["function"]["parameters"]
            assert set(parameters["required"]) <= set(parameters["properties"])
    judge_finish = specs(workspace(root, role="judge"))[-1]["function"]["parameters"]
    assert judge_finish["properties"]["verdict"]["enum"] == ["continue", "stop"]


# -- run ---------------------------------------------------------------------------------------------


def test_run_answers_status_and_merged_output_in_the_root(root: Path) -> None:
    ws = workspace(root)
    assert call(ws, "run", command="echo out; echo err >&2; exit 3") == "exit status 3\nout\nerr\n"
    assert call(ws, "run", command="pwd") == f"exit status 0\n{root.resolve()}\n"
    assert call(ws, "run", command="cat") == "exit status 0\n(no output)", "stdin is empty, not a wait"
    assert call(ws, "run", command="kill -9 $$").startswith("killed by signal 9")


def test_run_sees_only_the_scrubbed_environment(root: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SWARMD_TEST_SECRET", "hunter2")
    ws = Workspace(root=root, env={"PATH": os.environ["PATH"], "VISIBLE": "yes"}, role="worker", task_id="1")
    seen = call(ws, "run", command="env")
    assert "VISIBLE=yes" in seen and "hunter2" not in seen and "HOME=" not in seen


@pytest.mark.parametrize("limit, argument", [(600.0, 1), (1.0, 100)])
def test_run_kills_a_command_at_its_timeout(root: Path, limit: float, argument: float) -> None:
    answer = call(workspace(root, shell_timeout=limit), "run", command="echo before; sleep 30", timeout=argument)
    assert answer.startswith("timed out after 1 s; the command and all it started were killed. Output so far:\n")


def test_run_returns_when_the_command_exits_and_kills_what_it_left_behind(root: Path) -> None:
    ws = workspace(root, shell_timeout=60)
    answer = call(ws, "run", command="sleep 300 & echo $!")
    assert answer.startswith("exit status 0\n"), answer
    pid = int(answer.split("\n")[1])
    assert _exits(pid, timeout=60), "the background process was killed with the command's group"


def test_run_returns_even_when_an_escaped_process_holds_the_pipe(root: Path) -> None:
    answer = call(workspace(root, shell_timeout=60), "run", command="setsid sleep 300 & echo $!")
    pid = int(answer.split("\n")[1])
    try:
        assert answer.startswith("exit status 0\n"), "read what there was for a bounded time, then returned"
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)


def _exits(pid: int, timeout: float) -> bool:
    """Whether the process has ended, or ends within `timeout` (woken by its exit, through a pidfd)."""
    try:
        fd = os.pidfd_open(pid)
    except ProcessLookupError:
        return True
    try:
        return bool(select.select([fd], [], [], timeout)[0])
    finally:
        os.close(fd)


def test_run_keeps_the_head_and_tail_of_a_long_output(root: Path) -> None:
    answer = call(workspace(root, output_limit=2000), "run", command="seq 1 100000")
    assert len(answer) <= 2000
    assert answer.startswith("exit status 0\n1\n2\n3\n") and answer.endswith("99999\n100000\n")
    assert "bytes of output cut" in answer


# -- finish ------------------------------------------------------------------------------------------


def test_finish_for_a_worker(root: Path) -> None:
    ws = workspace(root)
    with pytest.raises(Finished) as done:
        call(ws, "finish", summary="Added the flag.", notes=["see README"])
    assert done.value.result == {"summary": "Added the flag.", "notes": ["see README"], "concerns": [], "follow_ups": []}
    assert "`summary` is required" in refused(ws, "finish", notes=["x"])
    assert "`summary` is empty" in refused(ws, "finish", summary="  ")
    assert "`concerns` must be a list of texts" in refused(ws, "finish", summary="ok", concerns="none")
    assert "unknown argument `verdict`" in refused(ws, "finish", summary="ok", verdict="stop")


def test_finish_for_the_judge(root: Path) -> None:
    ws = workspace(root, role="judge", task_id="root")
    with pytest.raises(Finished) as done:
        call(ws, "finish", verdict="stop", summary="The goal is met.")
    assert done.value.result == {"verdict": "stop", "summary": "The goal is met.", "notes": []}
    assert "`verdict` must be one of continue, stop (got 'maybe')" in refused(ws, "finish", verdict="maybe", summary="s")
    assert "`verdict` is required" in refused(ws, "finish", summary="s")


# -- create_task and update_task ---------------------------------------------------------------------

TREE = [
    Task(id="1", title="Done already", kind=Kind.PLAN, status=Status.DONE, parent=None),
    Task(id="2", title="Waiting", kind=Kind.WORK, parent=None, description="Do two."),
    Task(id="3", title="Being planned", kind=Kind.PLAN, parent=None),  # todo: its planner runs (ADR 0016)
    Task(id="3.1", title="First step", kind=Kind.WORK, parent="3"),
]


def planner(root: Path, task_id: str = "root", max_depth: int = 3) -> Workspace:
    (root / ".swarm/tasks").mkdir(parents=True, exist_ok=True)
    for task in TREE:
        (root / f".swarm/tasks/{task.id}.yaml").write_bytes(dump_task(task))
    return workspace(root, role="planner", task_id=task_id, max_depth=max_depth)


def task_files(root: Path) -> dict[str, bytes]:
    return {path.name: path.read_bytes() for path in sorted((root / ".swarm/tasks").iterdir())}


NEW = {"title": "Add the flag", "kind": "work", "description": "In cli.py."}
CREATE_PROBLEMS = {
    "not its id": ("root", 3, {"id": "3.2"}, "'3.2' is not yours to create; your ids are N (top level, not 0)"),
    "the reserved id": ("root", 3, {"id": "0"}, "'0' is not yours to create"),
    "a sub-planner's": ("3", 3, {"id": "4"}, "'4' is not yours to create; your ids are 3.N"),
    "a bad id": ("root", 3, {"id": "4a"}, "field `id`: a task id is dot-separated numbers"),
    "an empty title": ("root", 3, {"id": "4", "title": ""}, "field `title`: String should have at least 1 character"),
    "a missing need": ("root", 3, {"id": "4", "needs": ["9"]}, "field `needs[0]`: no task '9' exists"),
    "needing itself": ("root", 3, {"id": "4", "needs": ["4"]}, "a task cannot need itself"),
    "needing its ancestor": ("3", 3, {"id": "3.2", "needs": ["3"]}, "'3' is an ancestor or descendant of '3.2'"),
    "a plan too deep": ("3", 2, {"id": "3.2", "kind": "plan"}, "a plan task at depth 2 could never have tasks"),
    "an existing id": ("root", 3, {"id": "2"}, "task 2 exists already; change it with update_task"),
}


@pytest.mark.parametrize("case", CREATE_PROBLEMS)
def test_create_task_refuses_what_landing_would(root: Path, case: str) -> None:
    planner_id, depth, fields, expected = CREATE_PROBLEMS[case]
    ws = planner(root, planner_id, depth)
    before = task_files(root)
    message = refused(ws, "create_task", **{**NEW, **fields})
    assert message.startswith("nothing was written") and expected in message, message
    assert task_files(root) == before


def test_create_task_names_every_problem_at_once_then_takes_the_fix(root: Path) -> None:
    ws = planner(root)
    message = refused(ws, "create_task", id="3.2", title="", kind="work", description="d", needs=["9"])
    assert "not yours to create" in message and "field `title`" in message
    fixed = call(ws, "create_task", id=4, title="Add the flag", kind="work", description="In cli.py.",
                 needs=["2"], acceptance="pytest passes")
    written = (root / ".swarm/tasks/4.yaml").read_bytes()
    expected = Task(id="4", title="Add the flag", kind=Kind.WORK, parent=None, needs=["2"],
                    description="In cli.py.", acceptance="pytest passes")
    assert written == dump_task(expected), "the file is what swarmd itself writes"
    assert fixed == f"created .swarm/tasks/4.yaml:\n{written.decode()}"
    assert "no task '4'" not in refused(ws, "create_task", id="5", needs=["4", "8"], **NEW), "a task made here counts"


def test_a_sub_planner_creates_under_its_own_task_which_may_still_say_todo(root: Path) -> None:
    ws = planner(root, "3")
    assert call(ws, "create_task", id="3.2", needs=["3.1"], **NEW).startswith("created .swarm/tasks/3.2.yaml")
    assert parse_task((root / ".swarm/tasks/3.2.yaml").read_bytes(), "3.2").parent == "3"


def test_a_task_past_the_depth_limit_is_refused(root: Path) -> None:
    ws = planner(root, "3.1", max_depth=2)
    (root / ".swarm/tasks/3.1.yaml").write_bytes(dump_task(TREE[3].model_copy(update={"kind": Kind.PLAN})))
    assert "'3.1.1' is 3 levels deep, past `limits.depth` (2)" in refused(ws, "create_task", id="3.1.1", **NEW)


def test_update_task_changes_only_the_fields_given(root: Path) -> None:
    ws = planner(root)
    answer = call(ws, "update_task", id="2", title="Waiting longer")
    assert answer.startswith("updated .swarm/tasks/2.yaml")
    assert (root / ".swarm/tasks/2.yaml").read_bytes() == dump_task(TREE[1].model_copy(update={"title": "Waiting longer"}))
    assert "nothing to change" in refused(ws, "update_task", id="2")
    assert "there is no task '9'; create it with create_task" in refused(ws, "update_task", id="9", title="x")
    assert "'3.1' is not yours to create" in refused(ws, "update_task", id="3.1", title="x")


def test_update_task_refuses_a_task_that_is_no_longer_todo(root: Path) -> None:
    ws = planner(root)
    before = task_files(root)
    assert "task 1 is done; only todo tasks may be changed" in refused(ws, "update_task", id="1", title="Again")
    assert task_files(root) == before


def test_update_task_refuses_needs_that_would_never_finish(root: Path) -> None:
    ws = planner(root)
    call(ws, "create_task", id="4", needs=["2"], **NEW)
    before = task_files(root)
    assert "the tasks form a loop: 2 -> 4 -> 2" in refused(ws, "update_task", id="2", needs=["4"])
    assert "'3.1' is an ancestor or descendant of '3'" in refused(ws, "update_task", id="3", needs=["3.1"])
    assert task_files(root) == before
