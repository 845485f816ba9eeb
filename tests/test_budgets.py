"""Hard budgets, enforced by the gateway on real model calls of the built-in agent against swarmd.testing's
scripted server: a task's budget stops its agent, which hands off, and fails the task; a cycle's budget
starts no more agents and hands the cycle to the judge, who is told; the run's stops swarmd, and a start
is refused until it is raised. And what an agent's environment holds: an allowlist, never a key."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import yaml
from gitutil import git, write
from swarmutil import cycle, json_of, tasks
from test_builtin_agent import KEY, call, finish, repo, run

from swarmd.testing import ScriptedModelServer


def usage(input_tokens: int, output_tokens: int = 10) -> dict[str, int]:
    return {"input_tokens": input_tokens, "output_tokens": output_tokens}


def planner(*titles: str) -> dict[str, Any]:
    creates = [call("create_task", id=str(n), title=title, kind="work", description=f"{title}.")
               for n, title in enumerate(titles, 1)]
    return {"match": ["a **planner**", "root planner"], "replies": [
        {"tool_calls": creates, "usage": usage(100)},
        {"tool_calls": [finish(f"{len(titles)} tasks")], "usage": usage(100)},
    ]}


def judge(*expect: str) -> dict[str, Any]:
    verdict = {"name": "finish", "arguments": {"verdict": "stop", "summary": "judged", "notes": []}}
    return {"match": ["a **judge**"], "replies": [
        {"tool_calls": [verdict], "usage": usage(100), **({"expect": {"contains": list(expect)}} if expect else {})}]}


def budget(root: Path, **scopes: Any) -> None:
    config = yaml.safe_load((root / ".swarm/config.yaml").read_text())
    config["budget"] = {"task": {}, "cycle": {}, "run": {}, **scopes}
    (root / ".swarm/config.yaml").write_text(yaml.safe_dump(config))


def test_a_spent_task_budget_stops_its_agent_which_hands_off_and_the_task_fails(tmp_path: Path) -> None:
    conversations = [
        judge(),
        {"match": ["a **planner**", "root planner", "budget of task 1 is spent"], "replies": [
            {"tool_calls": [finish("task 1 ran out of budget")], "usage": usage(100)}]},
        planner("Write the notes"),
        {"match": ["a **worker**"], "replies": [
            {"tool_calls": [call("write_file", path="notes.txt", content="half done\n")], "usage": usage(3000, 100)},
            {"tool_calls": [finish("never: the gateway refuses this call")]},
        ]},
    ]
    with ScriptedModelServer({"conversations": conversations}, api_key=KEY) as server:
        root = repo(tmp_path, server)
        budget(root, task={"max_tokens": 3000})
        proc = run(root, "start")
        assert proc.returncode == 0, proc.stdout + proc.stderr
        assert server.failures == [], server.failures
        worker_calls = [r for r in server.requests if r.conversation == 3]
    assert len(worker_calls) == 1, "the refused call never reached the provider"
    assert "budget of task 1 is spent (3,100 of 3,000 tokens; budget.task)" in proc.stdout
    assert "1 failed: its budget is spent" in proc.stdout
    [attempt] = tasks(root)["1"]["attempts"]
    assert attempt["outcome"] == "budget" and "budget of task 1 is spent" in attempt["reason"]
    assert "Its handoff: Budget spent; stopped before the task was done" in attempt["reason"], "for the next try"
    assert attempt["usage"] == {"input_tokens": 3000, "output_tokens": 100, "cached_tokens": 0, "cost_usd": 0.0032}
    assert tasks(root)["1"]["status"] == "failed"
    kept = git(root, "branch", "--list", "swarm/failed/1/*").split()
    assert kept and git(root, "show", f"{kept[-1]}:notes.txt") == "half done", "what it did is kept on its branch"
    log = (root / ".git/swarm/runs/1/c1-a1/agent.log").read_text()
    assert "budget spent: swarmd: budget spent" in log, log


def test_a_spent_cycle_budget_starts_no_more_agents_and_the_judge_is_told(tmp_path: Path) -> None:
    conversations = [
        judge("cycle 1's budget is spent"),
        planner("Write alpha", "Write beta"),
        {"match": ["a **worker**", "Write alpha"], "replies": [
            {"tool_calls": [call("write_file", path="alpha.txt", content="alpha\n")], "usage": usage(100)},
            {"tool_calls": [finish("alpha written")], "usage": usage(9800)},
        ]},
        {"match": ["a **worker**", "Write beta"], "replies": [{"tool_calls": [finish("never started")]}]},
    ]
    with ScriptedModelServer({"conversations": conversations}, api_key=KEY) as server:
        root = repo(tmp_path, server)
        config = yaml.safe_load((root / ".swarm/config.yaml").read_text())
        config["limits"]["workers"] = 1  # alpha first, then beta would start
        (root / ".swarm/config.yaml").write_text(yaml.safe_dump(config))
        budget(root, cycle={"max_tokens": 10_000})
        proc = run(root, "start")
        assert proc.returncode == 0, proc.stdout + proc.stderr
        assert server.failures == [], server.failures
    found = tasks(root)
    assert found["1"]["status"] == "done"
    assert found["2"]["status"] == "todo" and not found["2"].get("attempts"), "no agent started after the budget"
    assert "cycle 1's budget is spent" in proc.stdout
    record = cycle(root, 1)
    assert record["verdict"] == "stop"
    assert record["usage"]["input_tokens"] == 100 + 100 + 100 + 9800 + 100, "every call, the judge's included"


def test_a_spent_run_budget_stops_swarmd_and_refuses_a_start_until_it_is_raised(tmp_path: Path) -> None:
    conversations = [
        judge(),
        {"match": ["a **planner**", "root planner"], "replies": [
            {"tool_calls": [call("list_files")], "usage": usage(100, 60)},
            {"tool_calls": [finish("never: the run's budget is spent")]},
        ]},
    ]
    with ScriptedModelServer({"conversations": conversations}, api_key=KEY) as server:
        root = repo(tmp_path, server)
        budget(root, run={"max_tokens": 150})
        proc = run(root, "start")
        assert proc.returncode == 2, proc.stdout + proc.stderr
        assert "stopped: the run's budget is spent (160 of 150 tokens)" in proc.stderr
        [attempt] = cycle(root, 1)["root"]["attempts"]
        assert attempt["outcome"] == "budget" and attempt["usage"]["input_tokens"] == 100
        assert json_of(root, "status")["spend"]["run"]["output_tokens"] == 60
        again = run(root, "start")
        assert again.returncode == 2 and "`budget.run`: the run's budget is spent" in again.stderr, again.stderr
        status = run(root, "status")
        assert "160 tokens" in status.stdout and "spent of 150 tokens for the run" in status.stdout, status.stdout
        budget(root, run={"max_tokens": 100_000})
        assert run(root, "check").returncode == 0


AGENT = """\
import json, os, sys
role = os.environ["SWARM_ROLE"]
with open(os.path.join(sys.argv[1], role + ".json"), "w") as out:
    json.dump(dict(os.environ), out)
with open(os.environ["SWARM_RESULT_FILE"], "w") as out:
    out.write("verdict: stop\\nsummary: seen\\n" if role == "judge" else "summary: seen\\n")
"""


def test_an_agent_s_environment_is_an_allowlist_and_holds_no_key(tmp_path: Path) -> None:
    root = tmp_path / "repo"
    root.mkdir()
    git(root, "init", "-q", "-b", "main")
    write(root, {"a.txt": "a\n"})
    git(root, "add", "-A")
    git(root, "commit", "-q", "-m", "first")
    seen = tmp_path / "seen"
    seen.mkdir()
    (tmp_path / "agent.py").write_text(AGENT)
    assert run(root, "init").returncode == 0
    config = yaml.safe_load((root / ".swarm/config.yaml").read_text())
    for role in ("planner", "worker", "judge"):
        config["agents"][role].update(command=[sys.executable, str(tmp_path / "agent.py"), str(seen)],
                                      env=["PASS_ME", "FIXED=two", "NOT_SET_ANYWHERE"])
    (root / ".swarm/config.yaml").write_text(yaml.safe_dump(config))
    secrets = {"ANTHROPIC_API_KEY": "sk-ant-secret-1", "OPENAI_API_KEY": "sk-secret-2", "SOME_TOKEN": "tok-secret-3",
               "UNRELATED": "not passed"}
    proc = run(root, "start", PASS_ME="one", **secrets)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    for role in ("planner", "judge"):
        env = json.loads((seen / f"{role}.json").read_text())
        assert not set(secrets) & set(env) and not set(secrets.values()) & set(env.values()), env
        assert env["PASS_ME"] == "one" and env["FIXED"] == "two" and "NOT_SET_ANYWHERE" not in env
        assert env["SWARM_GATEWAY_URL"].startswith("http://127.0.0.1:")
        assert env["SWARM_GATEWAY_URL"].endswith("/agent/" + env["SWARM_GATEWAY_TOKEN"])
        assert {"PATH", "HOME", "SWARM_ROLE", "SWARM_RESULT_FILE"} <= set(env)
        extra = set(env) - {"PASS_ME", "FIXED"} - {n for n in env if n.startswith(("SWARM_", "LC_", "XDG_"))}
        assert extra <= {"PATH", "HOME", "USER", "LOGNAME", "SHELL", "LANG", "LANGUAGE", "TERM", "TZ", "TMPDIR"}, extra


STUBBORN = """\
import json, os, signal, urllib.error, urllib.request
def ask():
    request = urllib.request.Request(os.environ["SWARM_GATEWAY_URL"] + "/v1/chat/completions",
        json.dumps({"model": "x", "messages": [{"role": "user", "content": "a stubborn worker"}]}).encode(),
        {"Authorization": "Bearer " + os.environ["SWARM_GATEWAY_TOKEN"], "Content-Type": "application/json"})
    try:
        return urllib.request.urlopen(request, timeout=120).status
    except urllib.error.HTTPError as exc:
        return exc.code
print("first call:", ask(), flush=True)
print("second call:", ask(), flush=True)
signal.pause()  # goes on regardless, until it is stopped
"""


def test_an_agent_that_goes_on_after_its_budget_is_spent_is_stopped(tmp_path: Path) -> None:
    """The contract: a 402 means stop. An agent that does not is stopped after `budget.grace` seconds."""
    (tmp_path / "stubborn.py").write_text(STUBBORN)
    script = {"conversations": [
        judge(),
        planner("Write the notes"),
        {"match": ["a stubborn worker"], "replies": [{"text": "ok", "usage": usage(3000)}] * 3},
    ]}
    with ScriptedModelServer(script, api_key=KEY) as server:
        root = repo(tmp_path, server, {"worker": {"command": [sys.executable, str(tmp_path / "stubborn.py")],
                                                  "model": "openai/scripted"}})
        budget(root, task={"max_tokens": 1000}, grace=1)
        proc = run(root, "start")
        assert proc.returncode == 0, proc.stdout + proc.stderr
    log = (root / ".git/swarm/runs/1/c1-a1/agent.log").read_text()
    assert "first call: 200" in log and "second call: 402" in log, log
    assert "did not hand off after its budget was spent; stopping it" in proc.stdout
    [attempt] = tasks(root)["1"]["attempts"]
    assert attempt["outcome"] == "budget" and attempt["usage"]["input_tokens"] == 3000
    assert tasks(root)["1"]["status"] == "failed"


ECHO = """\
import os
secret = os.environ["SOME_SECRET_TOKEN"]
with open(os.environ["SWARM_RESULT_FILE"], "w") as out:
    out.write("verdict: stop\\nsummary: judged\\n" if os.environ["SWARM_ROLE"] == "judge" else
              f"summary: it was {secret}\\nconcerns: [also {secret}]\\n")
print(f"my secret is {secret}")
raise SystemExit(1 if os.environ["SWARM_ROLE"] == "planner" and os.environ["SWARM_ATTEMPT"] == "1" else 0)
"""


def test_a_secret_an_agent_echoes_never_reaches_a_commit_or_the_log(tmp_path: Path) -> None:
    """A variable the user hands agents (agents.<role>.env) that holds a secret: an agent that repeats it
    in its handoff or its last words has it replaced by the variable's name in what swarmd writes."""
    (tmp_path / "echo.py").write_text(ECHO)
    secret = "s3cr3t-value-of-the-user"
    root = tmp_path / "repo"
    root.mkdir()
    git(root, "init", "-q", "-b", "main")
    git(root, "commit", "-q", "--allow-empty", "-m", "first")
    assert run(root, "init").returncode == 0
    command = [sys.executable, str(tmp_path / "echo.py")]
    config = {"agents": {role: {"command": command, "env": ["SOME_SECRET_TOKEN"]} for role in ("planner", "worker", "judge")}}
    (root / ".swarm/config.yaml").write_text(yaml.safe_dump(config))
    proc = run(root, "start", SOME_SECRET_TOKEN=secret)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert secret not in proc.stdout + proc.stderr
    assert secret not in git(root, "log", "-p", "--all")
    root_planner = cycle(root, 1)["root"]
    assert root_planner["attempts"][0]["reason"].startswith("exited with status 1 (my secret is $SOME_SECRET_TOKEN)")
    assert root_planner["result"]["summary"] == "it was $SOME_SECRET_TOKEN"
    for log in (root / ".git/swarm/runs").rglob("agent.log"):
        assert secret not in log.read_text() and "my secret is $SOME_SECRET_TOKEN" in log.read_text(), log
