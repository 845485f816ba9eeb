"""`swarmd status`, `tasks`, `show` and `log` as processes, on task trees and cycle records that agents
could have written: text shown literally, files that cannot be read named."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml
from gitutil import on_the_branch
from swarmutil import run

MARKUP = "fix [/] and [bold]x[/bold] :smile:"


def put(worktree: Path, path: str, data: dict[str, object]) -> None:
    target = worktree / path
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text(yaml.safe_dump(data, sort_keys=False))


@pytest.fixture
def root(repo_dir: Path) -> Path:
    """An initialised repository with two tasks and a closed cycle, all of their text markup-like."""
    assert run(repo_dir, "init").returncode == 0
    with on_the_branch(repo_dir) as worktree:
        put(worktree, ".swarm/tasks/1.yaml", {
            "id": "1", "title": MARKUP, "kind": "work", "status": "done", "parent": None, "needs": [],
            "description": f"do [red]this[/red] {MARKUP}", "acceptance": "[/] passes",
            "attempts": [{"number": 1, "outcome": "failed", "reason": "[/] broke"}, {"number": 2, "outcome": "landed"}],
            "result": {"summary": f"summary {MARKUP}", "notes": ["note [/]"], "concerns": ["[bold]"]},
        })
        put(worktree, ".swarm/tasks/2.yaml", {
            "id": "2", "title": "[link=x]then[/link] [/]", "kind": "plan", "status": "todo", "parent": None,
            "needs": ["1"],
        })
        put(worktree, ".swarm/cycles/0001.yaml", {
            "number": 1, "verdict": "continue", "summary": f"judged {MARKUP}", "duration_s": 3.0,
        })
    return repo_dir


def ok(root: Path, *args: str) -> str:
    proc = run(root, *args)
    assert proc.returncode == 0 and "Traceback" not in proc.stderr, proc.stderr
    return proc.stdout


def test_agent_text_is_shown_literally_never_as_markup(root: Path) -> None:
    listed = ok(root, "tasks")
    assert f"1 done {MARKUP}" in listed and "2 todo [link=x]then[/link] [/] (needs 1) plan" in listed
    shown = ok(root, "show", "1")
    for line in (f"1 {MARKUP} (done, work)", f"do [red]this[/red] {MARKUP}", "done when: [/] passes",
                 "attempt 1 (cycle None): failed: [/] broke", f"handoff: summary {MARKUP}", "  note: note [/]",
                 "  concern: [bold]"):
        assert line in shown.splitlines(), (line, shown)
    assert f"judged {MARKUP}" in " ".join(ok(root, "log").split())
    assert "cycle 1 closed: continue" in ok(root, "status")


def test_tasks_and_status_name_the_files_they_could_not_read(root: Path) -> None:
    with on_the_branch(root) as worktree:
        (worktree / ".swarm/tasks/8.yaml").symlink_to("/etc/passwd")
        (worktree / ".swarm/tasks/9.yaml").write_bytes(b"id: 9\ntitle: caf\xe9\nkind: work\nparent: null\n")
        put(worktree, ".swarm/tasks/3.yaml", {"id": "3", "title": "t", "kind": "work", "parent": None, "needs": ["7"]})
    unread = [
        "could not read .swarm/tasks/8.yaml: a symlink; a task file must be a regular file",
        "could not read .swarm/tasks/9.yaml: line 2: not UTF-8: byte 0xe9 at offset 16; save the file as UTF-8",
    ]
    invalid = ".swarm/tasks/3.yaml: field `needs[0]`: no task '7' exists"

    listed = ok(root, "tasks").splitlines()
    assert listed[-3:] == [*unread, invalid], listed
    assert any(line.endswith("3 todo t (needs 7)") for line in listed)

    status = ok(root, "status").splitlines()
    assert status[-3:] == [*unread, invalid]
    assert "tasks: 1 done, 2 todo" in status

    as_json = run(root, "status", "--json")
    assert as_json.returncode == 0
    assert json.loads(as_json.stdout)["problems"] == [*unread, invalid]


def test_tasks_json_keeps_its_list_and_names_the_unread_files_on_stderr(root: Path) -> None:
    with on_the_branch(root) as worktree:
        (worktree / ".swarm/tasks/8.yaml").symlink_to("/etc/passwd")
    proc = run(root, "tasks", "--json")
    assert proc.returncode == 0
    assert [row["id"] for row in json.loads(proc.stdout)] == ["1", "2"]
    assert proc.stderr.splitlines() == [
        "swarmd: could not read .swarm/tasks/8.yaml: a symlink; a task file must be a regular file"
    ]


def test_show_refuses_a_task_file_it_cannot_read(root: Path) -> None:
    with on_the_branch(root) as worktree:
        (worktree / ".swarm/tasks/8.yaml").symlink_to("1.yaml")
        (worktree / ".swarm/tasks/9.yaml").write_bytes(b"id: 9\ntitle: x\x85\n")
    for task_id, problem in (("8", "a symlink; a task file must be a regular file"),
                             ("9", "line 2: not UTF-8: byte 0x85 at offset 14; save the file as UTF-8")):
        proc = run(root, "show", task_id)
        assert proc.returncode == 2 and "Traceback" not in proc.stderr
        assert proc.stderr.strip() == f"swarmd: .swarm/tasks/{task_id}.yaml: {problem}"
