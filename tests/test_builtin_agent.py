"""`swarmd agent` in every role of a real swarm, against swarmd.testing's scripted model server through
litellm's real HTTP path: a planner that fixes a task after create_task's error, workers that edit through
the tools, a conflict resolved through the tools, a judge that stops; a wrong key that pauses its role."""

from __future__ import annotations

import json
import threading
from pathlib import Path
from typing import Any

import yaml
from gitutil import git, write
import swarmutil
from swarmutil import cycle, json_of, tasks

from swarmd.testing import ScriptedModelServer

KEY = "sk-test-not-a-real-key"


def finish(summary: str, **more: Any) -> dict[str, Any]:
    return {"name": "finish", "arguments": {"summary": summary, **more}}


def call(name: str, **arguments: Any) -> dict[str, Any]:
    return {"name": name, "arguments": arguments}


def worker(title: str, line: str) -> list[dict[str, Any]]:
    """A worker's conversation, and its conflict re-run's (first in the list: the more specific match)."""
    resolved = "alpha\nbeta\n"
    return [
        {"match": ["a **worker**", f"Make it {title}", "resolve a merge conflict"], "replies": [
            {"tool_calls": [call("read_file", path="notes.txt")], "usage": {"input_tokens": 900, "output_tokens": 20}},
            {"tool_calls": [call("write_file", path="notes.txt", content=resolved)],
             "expect": {"tool_result_contains": "<<<<<<<"}},
            {"tool_calls": [call("run", command="grep -c '' notes.txt")]},
            {"tool_calls": [finish(f"kept both sides: {title}")], "expect": {"tool_result_contains": "2"}},
        ]},
        {"match": ["a **worker**", f"Make it {title}"], "replies": [
            {"tool_calls": [call("edit_file", path="notes.txt", old="base\n", new=line)],
             "usage": {"input_tokens": 800, "output_tokens": 30, "cached_tokens": 200}},
            {"tool_calls": [finish(f"SUMMARY-{title}: notes.txt says {line.strip()}")],
             "expect": {"tool_result_contains": "notes.txt"}},
        ]},
    ]


def script() -> dict[str, Any]:
    return {"conversations": [
        {"match": ["a **judge**"], "replies": [
            {"tool_calls": [call("run", command="cat notes.txt")]},
            {"tool_calls": [{"name": "finish", "arguments": {"verdict": "stop", "summary": "notes.txt has both lines",
                                                             "notes": []}}],
             "expect": {"tool_result_contains": "beta"}},
        ]},
        # The root planner woken once both tasks are done: nothing more to add.
        {"match": ["a **planner**", "root planner", "SUMMARY-"], "replies": [{"tool_calls": [finish("the plan is complete")]}]},
        {"match": ["a **planner**", "root planner"], "replies": [
            {"tool_calls": [call("list_files")]},
            {"tool_calls": [call("create_task", id="1", title="Make it alpha", kind="work",
                                 description="Change notes.txt to say alpha.", needs=["7"],
                                 acceptance="notes.txt holds alpha")]},
            {"tool_calls": [call("create_task", id="1", title="Make it alpha", kind="work",
                                 description="Change notes.txt to say alpha.", acceptance="notes.txt holds alpha"),
                            call("create_task", id="2", title="Make it beta", kind="work",
                                 description="Change notes.txt to say beta.", acceptance="notes.txt holds beta")],
             "expect": {"tool_result_contains": "'7'"}},
            {"tool_calls": [finish("two tasks: alpha and beta")]},
        ]},
        *worker("alpha", "alpha\n"),
        *worker("beta", "beta\n"),
    ]}


def repo(tmp_path: Path, server: ScriptedModelServer, roles: dict[str, dict[str, Any]] | None = None) -> Path:
    root = tmp_path / "repo"
    root.mkdir()
    git(root, "init", "-q", "-b", "main")
    write(root, {"notes.txt": "base\n"})
    git(root, "add", "-A")
    git(root, "commit", "-q", "-m", "first")
    proc = run(root, "init", "--model", "openai/scripted", "--goal", "Make notes.txt say alpha and beta.")
    assert proc.returncode == 0, proc.stderr
    config = yaml.safe_load((root / ".swarm/config.yaml").read_text())
    assert {config["agents"][role]["model"] for role in ("planner", "worker", "judge")} == {"openai/scripted"}
    for role in ("planner", "worker", "judge"):
        config["agents"][role].update({
            "api_base": server.openai_base, "api_key_env": "SCRIPTED_KEY", "retries": 2, "retry_delay": 0.01,
            "timeout": 300, "price": {"input": 1.0, "output": 2.0}, **(roles or {}).get(role, {}),
        })
    (root / ".swarm/config.yaml").write_text(yaml.safe_dump(config))
    return root


def run(root: Path, *args: str, **env: str) -> Any:
    """`swarmd` as the user runs it, with the key the config names in its environment."""
    return swarmutil.run(root, *args, timeout=600, env={"SCRIPTED_KEY": KEY, **env})


def test_a_whole_cycle_with_the_built_in_agent_in_every_role(tmp_path: Path) -> None:
    with ScriptedModelServer(script(), api_key=KEY) as server:
        root = repo(tmp_path, server)
        proc = run(root, "start")
        assert proc.returncode == 0, proc.stdout + proc.stderr
        assert server.failures == [], server.failures
    found = tasks(root)
    assert {t: found[t]["status"] for t in found} == {"1": "done", "2": "done"}
    assert git(root, "show", "swarm/main:notes.txt").splitlines() == ["alpha", "beta"]
    outcomes = [a["outcome"] for t in found.values() for a in t["attempts"]]
    assert sorted(outcomes) == ["conflict", "landed", "landed"], "one conflict, resolved by its worker"
    for task in found.values():
        usage = task["result"]["usage"]
        assert usage["input_tokens"] > 0 and usage["cost_usd"] > 0
    record = cycle(root, 1)
    assert record["verdict"] == "stop" and record["summary"] == "notes.txt has both lines"
    assert set(record["usage_by_role"]) == {"planner", "worker", "judge"}
    assert record["usage"]["cost_usd"] > 0
    # Each agent process sent the key it was given, and nothing of it reached a file swarmd wrote.
    assert {r.headers.get("authorization") for r in server.requests} == {f"Bearer {KEY}"}
    runs = root / ".git/swarm/runs"
    for path in runs.rglob("*"):
        if path.is_file():
            assert KEY not in path.read_text(errors="replace"), path
    assert KEY not in git(root, "log", "-p", "swarm/main")
    transcript = [json.loads(line) for line in next(runs.glob("1/c1-a*/transcript.jsonl")).read_text().splitlines()]
    assert transcript[-1]["kind"] == "finish"
    shown = run(root, "show", "1")
    assert "finish" in shown.stdout, shown.stdout


def test_a_wrong_key_pauses_the_role_and_leaves_its_tasks_todo(tmp_path: Path) -> None:
    with ScriptedModelServer(script(), api_key=KEY) as server:
        root = repo(tmp_path, server, {"worker": {"api_key_env": "WRONG_KEY"}})
        proc = run(root, "start", WRONG_KEY="sk-wrong")
    assert proc.returncode == 2, proc.stdout + proc.stderr
    assert "the worker role is paused" in proc.stdout and "refused the key" in proc.stdout
    found = tasks(root)
    assert {t["status"] for t in found.values()} == {"todo"}
    assert all(a["outcome"] == "config" for t in found.values() for a in t["attempts"])
    assert "worker" in json_of(root, "status")["paused"]


def slow_worker() -> dict[str, Any]:
    """One task, whose worker's first call is answered (700 tokens in) and its second never is."""
    return {"conversations": [
        {"match": ["a **planner**", "root planner"], "replies": [
            {"tool_calls": [call("create_task", id="1", title="Make it slow", kind="work", description="Take long.")]},
            {"tool_calls": [finish("one task")]},
        ]},
        {"match": ["a **worker**"], "replies": [
            {"tool_calls": [call("list_files")], "usage": {"input_tokens": 700, "output_tokens": 30}},
            {"delay": 600, "tool_calls": [finish("never reached")]},  # cut short when the server stops
        ]},
    ]}


def second_call_sets(event: threading.Event) -> Any:
    def seen(request: Any) -> None:
        if request.conversation == 1 and request.reply == 1:
            event.set()  # the worker's first call is answered and counted
    return seen


def test_an_agent_stopped_mid_run_still_records_what_it_spent(tmp_path: Path) -> None:
    """The built-in agent hands over its usage after every model call, so an attempt cut short (a stop, or
    a kill at its timeout) still counts its tokens."""
    working = threading.Event()
    with ScriptedModelServer(slow_worker(), api_key=KEY, on_request=second_call_sets(working)) as server:
        root = repo(tmp_path, server)
        assert run(root, "start", "--detach").returncode == 0
        assert working.wait(300), "the worker never made its second call"
        stopped = run(root, "stop")
        assert stopped.returncode == 0, stopped.stderr
    [attempt] = tasks(root)["1"]["attempts"]
    assert attempt["outcome"] == "crashed" and attempt["reason"] == "swarmd was stopped"
    assert attempt["usage"]["input_tokens"] == 700 and attempt["usage"]["cost_usd"] > 0


def test_what_a_crashed_attempt_spent_is_recorded_from_the_gateway_s_count(tmp_path: Path) -> None:
    """kill -9 of the daemon mid-call: the gateway had counted the agent's answered calls in spend.jsonl,
    and the next start records them on the attempt the crash cut short."""
    import os
    import signal

    working = threading.Event()
    with ScriptedModelServer(slow_worker(), api_key=KEY, on_request=second_call_sets(working)) as server:
        root = repo(tmp_path, server)
        assert run(root, "start", "--detach").returncode == 0
        assert working.wait(300), "the worker never made its second call"
        pid = json.loads((root / ".git/swarm/daemon.pid").read_text())["pid"]
        os.kill(pid, signal.SIGKILL)
        swarmutil.wait_for_exit([pid], 60)  # its agent is left running: the next start stops it
        working.clear()
        assert run(root, "start", "--detach").returncode == 0
        assert working.wait(300), "the task did not run again"
        assert run(root, "stop").returncode == 0
    first = tasks(root)["1"]["attempts"][0]
    assert first["outcome"] == "crashed" and first["reason"] == "the daemon stopped while it ran"
    assert first["usage"]["input_tokens"] == 700 and first["usage"]["cost_usd"] > 0
