"""Each backend's real CLI (Claude Code, Codex, aider, Qwen Code; installed by tests/clis.py, never skipped)
as the worker of a real swarm: `swarmd start`, scripted planner and judge, and the CLI pointed at swarmd's
gateway, whose upstream is swarmd.testing's scripted server holding the real key. Its edit lands; the task's
usage is what the server returned, counted by the gateway; the real key is in no agent's environment, log,
transcript or commit; and a task budget stops the CLI mid-run: the next call is refused, the attempt is
`budget`, the task fails."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml
from clis import cli_path
from gitutil import git, write
from swarmutil import SCRIPTED, run, tasks

from swarmd.testing import ScriptedModelServer

KEY = "sk-real-key-only-the-gateway-holds"
TITLE = "Make notes.txt say alpha"
PLAN = {"plan": {1: [{"title": TITLE, "work": {}}]}, "judge": {"stop_after": 1}}
PRICE = {"input": 1.0, "output": 2.0}  # US dollars per million tokens


def edit_command(dump: Path) -> str:
    """The edit a tool-using CLI makes, and a copy of the environment its commands run with."""
    return f"printf 'alpha\\n' > notes.txt && env > {dump}"


def replies(backend: str, dump: Path, first_usage: dict[str, int]) -> list[dict[str, Any]]:
    """The worker's conversation: a first reply with `first_usage`, then a closing one."""
    if backend == "aider":  # no tools, and its opening is its own: every reply is the whole file
        return [{"text": "notes.txt\n```\nalpha\n```\n", "usage": first_usage}] * 12
    tool = {"claude-code": ("Bash", {"command": edit_command(dump), "description": "Edit"}),
            "codex": ("exec_command", {"cmd": edit_command(dump)}),
            "qwen-code": ("run_shell_command", {"command": edit_command(dump), "description": "Edit"})}[backend]
    # Qwen Code's first request already holds an assistant turn of its own, after the environment it describes.
    preamble = [{"text": "never asked for"}] if backend == "qwen-code" else []
    return [*preamble, {"tool_calls": [{"name": tool[0], "arguments": tool[1]}], "usage": first_usage},
            {"text": "notes.txt now says alpha.", "usage": {"input_tokens": 1200, "output_tokens": 20}}]


def conversation(backend: str, script: list[dict[str, Any]]) -> dict[str, Any]:
    """The worker's conversation, matched on the task where the CLI's opening (its system prompt and first
    user message) holds it; aider's opening is its example conversation, Qwen Code's the environment."""
    return {"replies": script, **({} if backend in ("aider", "qwen-code") else {"match": TITLE})}


def swarm(tmp_path: Path, backend: str, server: ScriptedModelServer, budget: dict[str, Any] | None = None) -> Path:
    root = tmp_path / "repo"
    root.mkdir()
    git(root, "init", "-q", "-b", "main")
    write(root, {"notes.txt": "base\n", "src/app.py": "print('hi')\n"})
    git(root, "add", "-A")
    git(root, "commit", "-q", "-m", "first")
    assert run(root, "init").returncode == 0
    worker = {"backend": backend, "command": None, "executable": str(cli_path(backend)), "model": "scripted-model",
              "api_base": server.openai_base, "api_key_env": "SCRIPTED_KEY", "price": PRICE, "retries": 1,
              "timeout": 300}
    config = {"agents": {"planner": {"command": SCRIPTED, "timeout": 60}, "judge": {"command": SCRIPTED, "timeout": 60},
                         "worker": worker},
              "budget": {"task": budget or {}, "run": {"max_usd": 5}}}
    (root / ".swarm/config.yaml").write_text(yaml.safe_dump(config))
    goal = "# Goal\n\nnotes.txt says alpha.\n\n```swarm-script\n" + yaml.safe_dump(PLAN) + "```\n"
    (root / ".swarm/goal.md").write_text(goal)
    return root


def start(root: Path) -> Any:
    return run(root, "start", timeout=900, env={"SCRIPTED_KEY": KEY})


def answered(server: ScriptedModelServer, script: list[dict[str, Any]]) -> dict[str, int]:
    """What the server reported for the calls it answered: the usage the task must record."""
    total = {"input_tokens": 0, "output_tokens": 0, "cached_tokens": 0}
    for request in server.requests:
        if request.method == "POST" and request.status == 200 and request.reply is not None:
            for name, value in script[request.reply]["usage"].items():
                total[name] += value
    return total


def no_key_anywhere(root: Path, dump: Path | None) -> None:
    for path in (root / ".git/swarm").rglob("*"):
        if path.is_file() and not path.is_symlink():
            assert KEY.encode() not in path.read_bytes(), path
    assert KEY not in git(root, "log", "-p", "--all")
    if dump is not None:  # what the CLI's own commands saw
        seen = dump.read_text()
        assert KEY not in seen and "SCRIPTED_KEY" not in seen, seen
        assert "SWARM_GATEWAY_TOKEN=swarmd-" in seen


BACKENDS = ["claude-code", "codex", "aider", "qwen-code"]


@pytest.mark.parametrize("backend", BACKENDS)
def test_the_cli_s_edit_lands_and_the_gateway_counts_what_it_spent(tmp_path: Path, backend: str) -> None:
    dump = tmp_path / "env.txt"
    script = replies(backend, dump, {"input_tokens": 1000, "output_tokens": 50, "cached_tokens": 200})
    with ScriptedModelServer({"conversations": [conversation(backend, script)]}, api_key=KEY) as server:
        root = swarm(tmp_path, backend, server)
        proc = start(root)
        assert proc.returncode == 0, proc.stdout + proc.stderr
        assert server.failures == [], server.failures
        expected = answered(server, script)
        keys = {r.headers.get("x-api-key") or r.headers.get("authorization", "").removeprefix("Bearer ")
                for r in server.requests if r.method == "POST"}
    found = tasks(root)["1"]
    assert found["status"] == "done", proc.stdout
    assert git(root, "show", "swarm/main:notes.txt") == "alpha"
    usage = found["result"]["usage"]
    assert {name: usage[name] for name in expected} == expected and expected["input_tokens"] > 0
    fresh = expected["input_tokens"] - expected["cached_tokens"]
    assert usage["cost_usd"] == pytest.approx((fresh + expected["cached_tokens"]) * 1e-6 + expected["output_tokens"] * 2e-6)
    assert keys == {KEY}, "the provider got the real key, put in by the gateway"
    no_key_anywhere(root, None if backend == "aider" else dump)


@pytest.mark.parametrize("backend", BACKENDS)
def test_a_task_budget_stops_the_cli_mid_run(tmp_path: Path, backend: str) -> None:
    dump = tmp_path / "env.txt"
    big = {"input_tokens": 6000, "output_tokens": 50}
    if backend == "aider":  # asks for another file, so it calls again: that call is refused
        script = [{"text": "To do this I need to see src/app.py.", "usage": big}] * 12
    else:
        script = replies(backend, dump, big)
    with ScriptedModelServer({"conversations": [conversation(backend, script)]}, api_key=KEY) as server:
        root = swarm(tmp_path, backend, server, budget={"max_tokens": 5000})
        proc = start(root)
        assert proc.returncode == 0, proc.stdout + proc.stderr
        reached = [r for r in server.requests if r.method == "POST"]
    assert len(reached) == 1, "the call after the budget was spent never reached the provider"
    found = tasks(root)["1"]
    assert found["status"] == "failed", proc.stdout
    [attempt] = found["attempts"]
    assert attempt["outcome"] == "budget", attempt
    assert "budget of task 1 is spent (6,050 of 5,000 tokens" in attempt["reason"]
    assert attempt["usage"]["input_tokens"] == 6000 and attempt["usage"]["output_tokens"] == 50
    assert "budget of task 1 is spent" in proc.stdout
    no_key_anywhere(root, None if backend == "aider" else dump)
