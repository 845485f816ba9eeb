"""The built-in agent's tool loop against swarmd.testing's scripted model server, through litellm's real
HTTP path: retries, configuration errors, malformed tool calls, max_steps, eliding, usage and cost."""

from __future__ import annotations

import json
import socket
from pathlib import Path
from typing import Any

import pytest

from swarmd.agents.llm.loop import Loop, Stopped
from swarmd.agents.llm.model import Misconfigured, Model, Settings
from swarmd.agents.llm.tools import Workspace
from swarmd.agents.llm.transcript import Transcript
from swarmd.testing import ScriptedModelServer

SYSTEM, TASK = "You are a worker.", "Write hello.txt."
DONE = {"name": "finish", "arguments": {"summary": "wrote hello.txt"}}


@pytest.fixture(scope="module", autouse=True)
def litellm_once() -> None:
    """Import litellm once for the module (seconds), not in the first test's time."""
    Model(Settings(model="openai/x"))


def settings(server: ScriptedModelServer, **changes: Any) -> Settings:
    base: dict[str, Any] = {"model": "openai/test-model", "api_base": server.openai_base, "api_key": "k",
                            "retries": 3, "retry_delay": 0.01, "max_steps": 10}
    return Settings(**{**base, **changes})


def loop(server: ScriptedModelServer, tmp_path: Path, role: str = "worker", **changes: Any) -> Loop:
    worktree = tmp_path / "wt"
    worktree.mkdir(exist_ok=True)
    chosen = settings(server, **changes)
    workspace = Workspace(root=worktree, env={"PATH": "/usr/bin:/bin"}, role=role, task_id="1")
    return Loop(Model(chosen), chosen, workspace, Transcript(tmp_path / "transcript.jsonl"), sleep=lambda s: None)


def transcript(tmp_path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in (tmp_path / "transcript.jsonl").read_text().splitlines()]


def test_a_worker_writes_through_the_tools_and_finishes(tmp_path: Path) -> None:
    script = {"replies": [
        {"tool_calls": [{"name": "write_file", "arguments": {"path": "hello.txt", "content": "hello\n"}},
                        {"name": "run", "arguments": {"command": "cat hello.txt"}}],
         "usage": {"input_tokens": 1000, "output_tokens": 50, "cached_tokens": 400}},
        {"tool_calls": [DONE], "expect": {"tool_result_contains": "hello"},
         "usage": {"input_tokens": 1200, "output_tokens": 20, "cached_tokens": 1000}},
    ]}
    with ScriptedModelServer(script) as server:
        agent = loop(server, tmp_path)
        result = agent.run(SYSTEM, TASK)
    assert server.failures == []
    assert result["summary"] == "wrote hello.txt"
    assert (tmp_path / "wt/hello.txt").read_text() == "hello\n"
    assert agent.usage.contract() == {"input_tokens": 2200, "output_tokens": 70, "cached_tokens": 1400, "cost_usd": None}
    kinds = [line["kind"] for line in transcript(tmp_path)]
    assert kinds == ["message", "message", "message", "tool", "tool", "message", "tool", "finish"]


def test_a_429_is_retried_after_its_retry_after_then_succeeds(tmp_path: Path) -> None:
    script = {"replies": [{"errors": [{"status": 429, "retry_after": 7}, {"status": 503}], "tool_calls": [DONE]}]}
    waits: list[float] = []
    with ScriptedModelServer(script) as server:
        agent = loop(server, tmp_path)
        agent.sleep = waits.append
        assert agent.run(SYSTEM, TASK)["summary"] == "wrote hello.txt"
    assert waits[0] == 7.0, "the provider's Retry-After is honoured"
    assert 0 <= waits[1] <= 0.02, "then backoff from retry_delay, with jitter"
    assert [line["tried"] for line in transcript(tmp_path) if line["kind"] == "retry"] == [1, 2]


def test_a_500_storm_ends_the_attempt_after_the_retries(tmp_path: Path) -> None:
    script = {"replies": [{"errors": [{"status": 500}] * 10, "tool_calls": [DONE]}]}
    with ScriptedModelServer(script) as server:
        with pytest.raises(Stopped, match="the model call failed 4 times"):
            loop(server, tmp_path).run(SYSTEM, TASK)
        assert len(server.requests) == 4


@pytest.mark.parametrize(("status", "words"), [(401, "refused the key"), (403, "refused the key"),
                                               (404, "was not found")])
def test_a_wrong_key_or_model_is_a_configuration_error_and_never_retried(tmp_path: Path, status: int, words: str) -> None:
    script = {"replies": [{"errors": [{"status": status}], "tool_calls": [DONE]}]}
    with ScriptedModelServer(script) as server:
        with pytest.raises(Misconfigured, match=words):
            loop(server, tmp_path).run(SYSTEM, TASK)
        assert len(server.requests) == 1


def test_a_server_never_reached_is_a_configuration_error(tmp_path: Path) -> None:
    with socket.socket() as taken:  # bound, never listening: connections are refused, and the port stays ours
        taken.bind(("127.0.0.1", 0))
        base = f"http://127.0.0.1:{taken.getsockname()[1]}/v1"
        chosen = Settings(model="openai/test-model", api_base=base, api_key="k", retries=1, retry_delay=0.01)
        worktree = tmp_path / "wt"
        worktree.mkdir()
        agent = Loop(Model(chosen), chosen, Workspace(root=worktree, env={}, role="worker", task_id="1"),
                     Transcript(None), sleep=lambda s: None)
        with pytest.raises(Misconfigured, match="cannot reach the model's server"):
            agent.run(SYSTEM, TASK)


def test_a_request_refused_at_once_is_a_configuration_error_later_a_failed_attempt(tmp_path: Path) -> None:
    refused = {"errors": [{"status": 400, "message": "max_tokens: 999999 > 8192, the most this model allows"}],
               "tool_calls": [DONE]}
    with ScriptedModelServer({"replies": [refused]}) as server:
        with pytest.raises(Misconfigured, match="refused the run's first request"):
            loop(server, tmp_path).run(SYSTEM, TASK)
    later = {"replies": [{"tool_calls": [{"name": "list_files", "arguments": {}}]}, refused]}
    with ScriptedModelServer(later) as server:
        with pytest.raises(Stopped, match="refused the request"):
            loop(server, tmp_path).run(SYSTEM, TASK)


def test_past_the_window_by_the_providers_count_it_elides_more_and_asks_again(tmp_path: Path) -> None:
    too_long = {"status": 400, "message": "prompt is too long: 250000 tokens > 200000 maximum"}
    with ScriptedModelServer({"replies": [{"errors": [too_long], "tool_calls": [DONE]}]}) as server:
        agent = loop(server, tmp_path, retries=0)  # asking again after eliding is not a retry
        assert agent.run(SYSTEM, TASK)["summary"] == "wrote hello.txt"
        assert len(server.requests) == 2


def test_files_written_long_ago_are_elided_from_the_calls_too(tmp_path: Path) -> None:
    big = "".join(f"line {n} of a generated file\n" for n in range(400))
    write = {"tool_calls": [{"name": "write_file", "arguments": {"path": "big.txt", "content": big}}]}
    with ScriptedModelServer({"replies": [write, write, write, {"tool_calls": [DONE]}]}) as server:
        loop(server, tmp_path, context_window=9000, max_tokens=1000).run(SYSTEM, TASK)
        last = server.requests[-1].body["messages"]
    arguments = [c["function"]["arguments"] for m in last if m["role"] == "assistant" for c in m.get("tool_calls", [])]
    assert "elided" in arguments[0] and json.loads(arguments[-1])["content"] == big


def test_malformed_arguments_and_unknown_tools_are_answered_as_errors(tmp_path: Path) -> None:
    script = {"replies": [
        {"tool_calls": [{"name": "write_file", "arguments": '{"path": "a.txt", "content": '},
                        {"name": "teleport", "arguments": {}}]},
        {"tool_calls": [DONE], "expect": {"tool_result_contains": "teleport"}},
    ]}
    with ScriptedModelServer(script) as server:
        loop(server, tmp_path).run(SYSTEM, TASK)
        assert server.failures == []
        answers = [m["content"] for m in server.requests[-1].body["messages"] if m["role"] == "tool"]
    assert answers[0].startswith("error:") and "JSON" in answers[0]
    assert answers[1].startswith("error:") and "teleport" in answers[1] and "read_file" in answers[1]


def test_max_steps_ends_the_attempt_and_says_so(tmp_path: Path) -> None:
    chatter = {"tool_calls": [{"name": "list_files", "arguments": {}}]}
    with ScriptedModelServer({"replies": [chatter] * 5}) as server:
        with pytest.raises(Stopped, match=r"used all 3 steps \(agents.worker.max_steps\)"):
            loop(server, tmp_path, max_steps=3).run(SYSTEM, TASK)


def test_a_small_window_elides_old_tool_output_but_never_the_task(tmp_path: Path) -> None:
    (tmp_path / "wt").mkdir()
    (tmp_path / "wt/big.txt").write_text("".join(f"line {n} of a long file\n" for n in range(600)))
    read = {"tool_calls": [{"name": "read_file", "arguments": {"path": "big.txt"}}]}
    with ScriptedModelServer({"replies": [read, read, read, {"tool_calls": [DONE]}]}) as server:
        loop(server, tmp_path, context_window=9000, max_tokens=1000).run(SYSTEM, TASK)
        last = server.requests[-1].body["messages"]
    assert last[1] == {"role": "user", "content": TASK}
    tools = [m["content"] for m in last if m["role"] == "tool"]
    assert tools[0].startswith("[elided: ") and "line 599" in tools[-1]
    assert any(line["kind"] == "elided" for line in transcript(tmp_path))


def test_cost_from_the_configured_price_and_none_for_an_unpriced_model(tmp_path: Path) -> None:
    script = {"replies": [{"tool_calls": [DONE], "usage": {"input_tokens": 1_000_000, "output_tokens": 100_000,
                                                           "cached_tokens": 500_000}}]}
    with ScriptedModelServer(script) as server:
        priced = loop(server, tmp_path, price={"input": 2.0, "output": 10.0, "cached_input": 0.5})
        priced.run(SYSTEM, TASK)
        unpriced = loop(server, tmp_path)
        unpriced.run(SYSTEM, TASK)
    assert priced.usage.contract()["cost_usd"] == pytest.approx(0.5 * 2.0 + 0.5 * 0.5 + 0.1 * 10.0)
    assert unpriced.usage.contract()["cost_usd"] is None
    assert unpriced.usage.contract()["input_tokens"] == 1_000_000


def test_the_anthropic_path_marks_the_prompt_for_caching(tmp_path: Path) -> None:
    script = {"replies": [{"tool_calls": [DONE], "usage": {"input_tokens": 3000, "output_tokens": 10,
                                                           "cached_tokens": 2500}}]}
    with ScriptedModelServer(script) as server:
        agent = loop(server, tmp_path, model="anthropic/claude-sonnet-4-5", api_base=server.base_url)
        agent.run(SYSTEM, TASK)
        body = server.requests[0].body
    assert body["system"][0]["cache_control"] == {"type": "ephemeral"}
    assert body["messages"][-1]["content"][-1]["cache_control"] == {"type": "ephemeral"}
    usage = agent.usage.contract()
    assert usage["cached_tokens"] == 2500 and usage["cost_usd"] is not None, "litellm prices a model it knows"


def test_a_reply_without_tool_calls_is_nudged_to_use_them(tmp_path: Path) -> None:
    script = {"replies": [{"text": "I think I am done."}, {"tool_calls": [DONE], "expect": {"last_contains": "finish"}}]}
    with ScriptedModelServer(script) as server:
        assert loop(server, tmp_path).run(SYSTEM, TASK)["summary"] == "wrote hello.txt"
        assert server.failures == []
