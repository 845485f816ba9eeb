"""`swarmd agent` run by hand the way the agent contract documents it, without a daemon: the variables,
the prompt, the settings and the result file are all it needs, and every way out is an exit status the
contract names."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path
from typing import Any

import yaml
from swarmutil import SWARMD

from swarmd.testing import ScriptedModelServer


def contract(tmp_path: Path, settings: dict[str, Any]) -> dict[str, str]:
    """A worktree, a run folder outside it, and the SWARM_* variables the contract promises a worker."""
    worktree, run = tmp_path / "wt", tmp_path / "run"
    worktree.mkdir()
    run.mkdir()
    (run / "prompt.md").write_text("You are a **worker**. Write done.txt.\n")
    (run / "settings.json").write_text(json.dumps(settings))
    env = {k: v for k, v in os.environ.items() if not k.startswith("SWARM_")}
    return {**env, "SWARM_ROLE": "worker", "SWARM_TASK_ID": "1", "SWARM_CYCLE": "1", "SWARM_ATTEMPT": "1",
            "SWARM_PROMPT_FILE": str(run / "prompt.md"), "SWARM_RESULT_FILE": str(run / "result.yaml"),
            "SWARM_AGENT_SETTINGS": str(run / "settings.json"), "SWARM_BASE": "0" * 40,
            "SWARM_INTEGRATION_BRANCH": "swarm/main"}


def agent(tmp_path: Path, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*SWARMD, "agent"], cwd=tmp_path / "wt", env=env, capture_output=True, text=True,
                          stdin=subprocess.DEVNULL, timeout=300)


def test_outside_the_contract_it_says_so_and_exits_2(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("SWARM_")}
    proc = subprocess.run([*SWARMD, "agent"], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2
    assert "SWARM_PROMPT_FILE is not set" in proc.stderr and "swarmd daemon" in proc.stderr


def test_no_model_is_a_configuration_error(tmp_path: Path) -> None:
    proc = agent(tmp_path, contract(tmp_path, {"model": None}))
    assert proc.returncode == 78
    assert proc.stdout.strip().splitlines()[-1].startswith("swarmd agent: configuration error: no model is set")


def test_it_works_finishes_and_hands_over_its_usage(tmp_path: Path) -> None:
    script = {"replies": [
        {"tool_calls": [{"name": "write_file", "arguments": {"path": "done.txt", "content": "done\n"}}],
         "usage": {"input_tokens": 500, "output_tokens": 40}},
        {"tool_calls": [{"name": "finish", "arguments": {"summary": "wrote done.txt"}}],
         "usage": {"input_tokens": 600, "output_tokens": 10}},
    ]}
    with ScriptedModelServer(script) as server:
        settings = {"model": "openai/scripted", "api_base": server.openai_base, "price": {"input": 1.0, "output": 2.0}}
        proc = agent(tmp_path, contract(tmp_path, settings))
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert (tmp_path / "wt/done.txt").read_text() == "done\n"
    result = yaml.safe_load((tmp_path / "run/result.yaml").read_text())
    assert result["summary"] == "wrote done.txt"
    assert result["usage"] == {"input_tokens": 1100, "output_tokens": 50, "cached_tokens": 0,
                               "cost_usd": (1100 * 1.0 + 50 * 2.0) / 1e6}


def test_a_failed_attempt_still_hands_over_why_and_what_it_spent(tmp_path: Path) -> None:
    chatter = {"tool_calls": [{"name": "list_files", "arguments": {}}], "usage": {"input_tokens": 100, "output_tokens": 5}}
    with ScriptedModelServer({"replies": [chatter] * 3}) as server:
        proc = agent(tmp_path, contract(tmp_path, {"model": "openai/scripted", "api_base": server.openai_base,
                                                   "max_steps": 2}))
    assert proc.returncode == 1
    assert "used all 2 steps" in proc.stdout.strip().splitlines()[-1]
    result = yaml.safe_load((tmp_path / "run/result.yaml").read_text())
    assert "used all 2 steps" in result["summary"] and result["usage"]["input_tokens"] == 200


def test_the_repository_s_own_modules_cannot_stand_in_for_the_agent_s(tmp_path: Path) -> None:
    """The daemon's command for it keeps the worktree off sys.path: a json.py there is the project's, not ours."""
    from swarmd.daemon.agent_env import BUILTIN_AGENT

    script = {"replies": [{"tool_calls": [{"name": "finish", "arguments": {"summary": "fine"}}]}]}
    with ScriptedModelServer(script) as server:
        env = contract(tmp_path, {"model": "openai/scripted", "api_base": server.openai_base})
        for name in ("json.py", "yaml.py", "swarmd.py"):
            (tmp_path / "wt" / name).write_text("raise SystemExit(99)\n")
        proc = subprocess.run(BUILTIN_AGENT, cwd=tmp_path / "wt", env=env, capture_output=True, text=True,
                              stdin=subprocess.DEVNULL, timeout=300)
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_its_commands_cannot_find_the_key_even_in_proc(tmp_path: Path) -> None:
    key, token = "sk-the-real-key-0123456789", "ghp_another_secret_0123456789"
    look = ("env; echo; tr '\\0' '\\n' < /proc/$PPID/environ; echo; tr '\\0' '\\n' < /proc/self/environ; "
            "cat /proc/$PPID/cmdline")
    script = {"replies": [
        {"tool_calls": [{"name": "run", "arguments": {"command": look}}]},
        {"tool_calls": [{"name": "finish", "arguments": {"summary": "looked"}}],
         "expect": {"tool_result_contains": "SWARM_ROLE=worker"}},
    ]}
    with ScriptedModelServer(script, api_key=key) as server:
        env = {**contract(tmp_path, {"model": "openai/scripted", "api_base": server.openai_base,
                                     "api_key_env": "MY_MODEL"}),
               "MY_MODEL": key, "GITHUB_TOKEN": token}
        proc = agent(tmp_path, env)
        assert proc.returncode == 0, proc.stdout + proc.stderr
        assert server.failures == []
        answers = json.dumps([r.body for r in server.requests])
    assert "SWARM_ROLE=worker" in answers, "the command ran and its output came back"
    assert key not in answers and token not in answers
    assert {r.headers["authorization"] for r in server.requests} == {f"Bearer {key}"}, "the agent still has its key"
    for path in (tmp_path / "run").iterdir():
        assert key not in path.read_text() and token not in path.read_text(), path
