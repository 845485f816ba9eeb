"""swarmd.testing's scripted model server, over real HTTP on loopback, mostly through litellm's own client
(the path swarmd's built-in agent takes) for both the OpenAI and the Anthropic API."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import urllib.error
import urllib.request
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

from swarmd.errors import UsageError, ValidationError
from swarmd.testing import Conversation, Reply, Script, ScriptedModelServer, ToolCall, Usage

TOOLS = [{"type": "function", "function": {
    "name": "bash", "description": "Run a shell command.",
    "parameters": {"type": "object", "properties": {"command": {"type": "string"}}, "required": ["command"]},
}}]
HELLO = [{"role": "system", "content": "You are a worker."}, {"role": "user", "content": "Fix the bug."}]
APIS = ["openai", "anthropic"]


@pytest.fixture(scope="module")
def litellm() -> ModuleType:
    os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")  # no download of the price map
    import litellm

    litellm.suppress_debug_info = True
    return litellm


def ask(litellm: ModuleType, server: ScriptedModelServer, api: str, messages: list[dict[str, Any]],
        key: str = "k", stream: bool = False) -> Any:
    """One completion through litellm; a streamed one is rebuilt into a whole response."""
    if api == "openai":
        where = {"model": "openai/test-model", "api_base": server.openai_base, "max_retries": 0}
    else:
        where = {"model": "anthropic/test-model", "api_base": server.base_url, "max_tokens": 1000}
    if not stream:
        return litellm.completion(**where, api_key=key, messages=messages, tools=TOOLS)
    chunks = list(litellm.completion(**where, api_key=key, messages=messages, tools=TOOLS, stream=True,
                                     stream_options={"include_usage": True}))
    return litellm.stream_chunk_builder(chunks, messages=messages)


def after(messages: list[dict[str, Any]], response: Any, result: str) -> list[dict[str, Any]]:
    """The next turn's messages: the assistant's tool call, then its result."""
    message = response.choices[0].message
    call = message.tool_calls[0]
    function = {"name": call.function.name, "arguments": call.function.arguments}
    assistant = {"role": "assistant", "content": message.content,
                 "tool_calls": [{"id": call.id, "type": "function", "function": function}]}
    return [*messages, assistant, {"role": "tool", "tool_call_id": call.id, "content": result}]


def post(url: str, body: bytes, headers: dict[str, str] | None = None, method: str = "POST") -> tuple[int, Any, Any]:
    request = urllib.request.Request(url, data=body, method=method,
                                     headers={"Content-Type": "application/json", **(headers or {})})
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return response.status, response.headers, response.read()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.headers, json.loads(exc.read())


@pytest.mark.parametrize("api", APIS)
def test_a_text_reply(litellm: ModuleType, api: str) -> None:
    with ScriptedModelServer({"replies": [{"text": "Hello there."}]}) as server:
        response = ask(litellm, server, api, HELLO)
    assert response.choices[0].message.content == "Hello there."
    assert response.choices[0].finish_reason == "stop"
    [request] = server.requests
    assert (request.api, request.conversation, request.reply, request.status) == (api, 0, 0, 200)
    assert request.body["model"] == "test-model"
    assert server.failures == []


@pytest.mark.parametrize("stream", [False, True], ids=["whole", "streamed"])
@pytest.mark.parametrize("api", APIS)
def test_tool_calls_and_usage_pass_through(litellm: ModuleType, api: str, stream: bool) -> None:
    reply = Reply(
        text="Let me look around first.",
        tool_calls=[ToolCall("bash", {"command": "ls -la"}),
                    ToolCall("bash", {"command": "cat 'a \"b\".txt'"}, id="x1")],
        usage=Usage(input_tokens=1200, output_tokens=35, cached_tokens=1000),
    )
    with ScriptedModelServer(Script([Conversation([reply])])) as server:
        response = ask(litellm, server, api, HELLO, stream=stream)
    message = response.choices[0].message
    assert response.choices[0].finish_reason == "tool_calls"
    assert message.content == "Let me look around first."
    assert [(c.function.name, json.loads(c.function.arguments)) for c in message.tool_calls] == [
        ("bash", {"command": "ls -la"}), ("bash", {"command": "cat 'a \"b\".txt'"})]
    assert message.tool_calls[1].id == "x1"
    assert (response.usage.prompt_tokens, response.usage.completion_tokens) == (1200, 35)
    assert response.usage.prompt_tokens_details.cached_tokens == 1000
    assert server.requests[0].body.get("stream", False) is stream


def test_cache_creation_tokens_reach_anthropic_usage(litellm: ModuleType) -> None:
    usage = {"input_tokens": 500, "output_tokens": 10, "cached_tokens": 100, "cache_creation_tokens": 300}
    with ScriptedModelServer({"replies": [{"text": "ok", "usage": usage}]}) as server:
        response = ask(litellm, server, "anthropic", HELLO)
    assert response.usage.prompt_tokens == 500
    assert (response.usage.cache_read_input_tokens, response.usage.cache_creation_input_tokens) == (100, 300)


@pytest.mark.parametrize("api", APIS)
def test_a_second_turn_with_the_tool_result_gets_the_second_reply(litellm: ModuleType, api: str) -> None:
    script = {"replies": [
        {"tool_calls": [{"name": "bash", "arguments": {"command": "ls"}}]},
        {"text": "There is a README.", "expect": {"tool_result_contains": "README.md", "contains": "Fix the bug."}},
    ]}
    with ScriptedModelServer(script) as server:
        first = ask(litellm, server, api, HELLO)
        second = ask(litellm, server, api, after(HELLO, first, "README.md\nsrc\n"))
    assert second.choices[0].message.content == "There is a README."
    assert [r.reply for r in server.requests] == [0, 1]
    assert server.failures == []


def test_two_conversations_chosen_by_match_run_at_once(litellm: ModuleType) -> None:
    """A planner (OpenAI) and a worker (Anthropic) talk to one server; both first requests come before
    either second one, so each reply is chosen by its request alone."""
    script = {"conversations": [
        {"match": ["You are the planner."], "replies": [
            {"tool_calls": [{"name": "bash", "arguments": {"command": "plan"}}]}, {"text": "planned"}]},
        {"match": ["You are a worker.", "Fix the bug."], "replies": [
            {"tool_calls": [{"name": "bash", "arguments": {"command": "work"}}]}, {"text": "worked"}]},
    ]}
    both_asked = threading.Barrier(2, timeout=60)
    answers: dict[str, str] = {}

    def converse(api: str, system: str) -> None:
        messages = [{"role": "system", "content": system}, {"role": "user", "content": "Fix the bug."}]
        try:
            first = ask(litellm, server, api, messages)
        except BaseException:
            both_asked.abort()  # the other thread stops waiting; the assertion below shows what is missing
            raise
        both_asked.wait()
        answers[system] = ask(litellm, server, api, after(messages, first, "ok")).choices[0].message.content

    with ScriptedModelServer(script) as server:
        threads = [threading.Thread(target=converse, args=("openai", "You are the planner.")),
                   threading.Thread(target=converse, args=("anthropic", "You are a worker."))]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
    assert answers == {"You are the planner.": "planned", "You are a worker.": "worked"}
    assert sorted((r.api, r.conversation, r.reply) for r in server.requests) == [
        ("anthropic", 1, 0), ("anthropic", 1, 1), ("openai", 0, 0), ("openai", 0, 1)]
    assert server.failures == []


@pytest.mark.parametrize("api", APIS)
def test_scripted_errors_come_first_then_the_reply(litellm: ModuleType, api: str) -> None:
    script = {"replies": [{"text": "finally", "errors": [{"status": 429, "retry_after": 2}, {"status": 500}]}]}
    with ScriptedModelServer(script) as server:
        with pytest.raises(litellm.RateLimitError) as limited:
            ask(litellm, server, api, HELLO)
        with pytest.raises(litellm.InternalServerError):
            ask(litellm, server, api, HELLO)
        assert ask(litellm, server, api, HELLO).choices[0].message.content == "finally"
        assert ask(litellm, server, api, HELLO).choices[0].message.content == "finally"  # a retry: the same
    # litellm keeps the headers here on both paths; its Anthropic path's `response` is one it makes up
    assert limited.value.litellm_response_headers["retry-after"] == "2"
    if api == "openai":
        assert limited.value.response.headers["retry-after"] == "2"
    assert [r.status for r in server.requests] == [429, 500, 200, 200]
    assert server.failures == []


@pytest.mark.parametrize("api", APIS)
def test_a_wrong_api_key_gets_401(litellm: ModuleType, api: str) -> None:
    with ScriptedModelServer({"replies": [{"text": "hi"}]}, api_key="right") as server:
        with pytest.raises(litellm.AuthenticationError):
            ask(litellm, server, api, HELLO, key="wrong")
        assert ask(litellm, server, api, HELLO, key="right").choices[0].message.content == "hi"
    assert [r.status for r in server.requests] == [401, 200]
    assert server.failures == []


def test_errors_in_each_apis_shape() -> None:
    errors = [{"status": 503, "message": "busy", "code": "c1"}, {"status": 403}]
    script = {"replies": [{"text": "hi", "errors": errors}]}
    body = json.dumps({"model": "m", "messages": [{"role": "user", "content": "x"}]}).encode()
    with ScriptedModelServer(script, api_key="right") as server:
        assert post(server.openai_base + "/chat/completions", body, {"Authorization": "Bearer wrong"})[::2] == (
            401, {"error": {"message": "the API key sent does not match the one the scripted server was given",
                            "type": "invalid_request_error", "param": None, "code": "invalid_api_key"}})
        assert post(server.base_url + "/v1/messages", body, {"x-api-key": "wrong"})[2]["error"]["type"] == \
            "authentication_error"
        assert post(server.base_url + "/chat/completions", body, {"Authorization": "Bearer right"})[::2] == (
            503, {"error": {"message": "busy", "type": "server_error", "param": None, "code": "c1"}})
        assert post(server.base_url + "/v1/messages", body, {"x-api-key": "right"})[::2] == (
            403, {"type": "error", "error": {"type": "permission_error", "message": "Forbidden (scripted error 403)"}})


def test_an_unmet_expectation_is_answered_400_and_recorded(litellm: ModuleType) -> None:
    script = {"replies": [{"text": "hi", "expect": {"last_contains": "the magic word"}}]}
    with ScriptedModelServer(script) as server:
        with pytest.raises(litellm.BadRequestError, match="the magic word"):
            ask(litellm, server, "openai", HELLO)
    [failure] = server.failures
    assert failure.startswith("conversation 0 reply 0: expected the last message to contain 'the magic word', "
                              "but it was 'Fix the bug.")
    assert server.requests[0].status == 400


@pytest.mark.parametrize("api", APIS)
def test_a_script_that_runs_out_answers_500_and_records_it(litellm: ModuleType, api: str) -> None:
    with ScriptedModelServer({"replies": [{"tool_calls": [{"name": "bash"}]}]}) as server:
        first = ask(litellm, server, api, HELLO)
        assert json.loads(first.choices[0].message.tool_calls[0].function.arguments) == {}
        with pytest.raises(litellm.InternalServerError, match="the script has no reply 1 for conversation 0"):
            ask(litellm, server, api, after(HELLO, first, "done"))
    assert server.failures == ["the script has no reply 1 for conversation 0: it has 1, numbered from 0 "
                               "(the request holds 1 assistant messages)"]


def test_a_request_no_conversation_matches_is_a_failure() -> None:
    body = json.dumps({"model": "m", "messages": [{"role": "user", "content": "hello"}]}).encode()
    with ScriptedModelServer({"match": "You are the judge.", "replies": [{"text": "x"}]}) as server:
        status, _, answer = post(server.openai_base + "/chat/completions", body)
    assert status == 500 and "no conversation of the script matches" in answer["error"]["message"]
    assert server.failures == [answer["error"]["message"]]


@pytest.mark.parametrize(("api", "stream"), [("openai", False), ("openai", True), ("anthropic", True)])
def test_malformed_tool_call_arguments_pass_through_raw(litellm: ModuleType, api: str, stream: bool) -> None:
    raw = '{"command": "ls'
    with ScriptedModelServer({"replies": [{"tool_calls": [{"name": "bash", "arguments": raw}]}]}) as server:
        response = ask(litellm, server, api, HELLO, stream=stream)
    assert response.choices[0].message.tool_calls[0].function.arguments == raw


def test_a_delayed_reply_comes(litellm: ModuleType) -> None:
    with ScriptedModelServer({"replies": [{"text": "slow", "delay": 0.2}]}) as server:
        assert ask(litellm, server, "anthropic", HELLO, stream=True).choices[0].message.content == "slow"


def test_a_yaml_script_loads_and_a_bad_field_is_named(tmp_path: Path) -> None:
    good = tmp_path / "good.yaml"
    good.write_text("conversations:\n  - match: worker\n    replies:\n      - text: hi\n"
                    "        errors: [{status: 429, retry_after: 1}]\n")
    script = Script.load(good)
    assert script.conversations[0].match == ("worker",)
    assert script.conversations[0].replies[0].errors[0].retry_after == 1.0
    bad = tmp_path / "bad.yaml"
    for text, problem in [
        ("replies:\n  - tool_calls:\n      - name: bash\n        argumnets: {}\n",
         "field `conversations.0.replies.0.tool_calls.0.argumnets`: unknown key (check its spelling; "
         "the keys here are name, arguments, id)"),
        ("conversations:\n  - replies:\n      - errors: [{status: 200}]\n",
         "field `conversations.0.replies.0.errors.0.status`: expected a number from 400 to 599 (got 200)"),
        ("replies:\n  - usage: {input_tokens: 10, cached_tokens: 20}\n",
         "field `conversations.0.replies.0.usage.input_tokens`: counts the whole prompt, so it cannot be less "
         "than cached_tokens + cache_creation_tokens (20) (got 10)"),
        ("conversations: []\n", "field `conversations`: the script has no conversation; give at least one"),
        ("replies:\n  - text: [a\n", "not valid YAML: "),
    ]:
        bad.write_text(text)
        with pytest.raises(ValidationError) as caught:
            ScriptedModelServer(bad)
        assert caught.value.problems[0].startswith(f"{bad}: ") and problem in caught.value.problems[0]
    with pytest.raises(UsageError, match="cannot read the script"):
        Script.load(tmp_path / "missing.yaml")


def test_a_script_built_in_python_is_checked_too() -> None:
    script = Script([Conversation([Reply(text="ok"), Reply(delay=-1)])])
    with pytest.raises(ValidationError, match=r"^script: field `conversations.0.replies.1.delay`: expected a "
                                              r"number of seconds, 0 or more \(got -1\)$"):
        ScriptedModelServer(script)


def test_bad_requests_are_refused_and_recorded() -> None:
    with ScriptedModelServer({"replies": [{"text": "x"}]}) as server:
        assert post(server.base_url + "/v1/completions", b"{}")[0] == 404
        assert post(server.base_url + "/v1/messages", b"{not json")[::2][0] == 400
        assert post(server.base_url + "/v1/messages", b'{"model": "m"}')[2]["error"]["message"] == \
            "the request body has no `messages` list"
        assert post(server.openai_base + "/chat/completions", None, method="GET")[0] == 405
    assert [(r.api, r.status) for r in server.requests] == [(None, 404), ("anthropic", 400), ("anthropic", 400),
                                                           ("openai", 405)]
    assert len(server.failures) == 4 and "no such path: POST /v1/completions" in server.failures[0]


def test_stopping_releases_the_port_and_the_thread() -> None:
    server = ScriptedModelServer({"replies": [{"text": "x"}]}).start()
    port = server.port
    assert server._httpd is not None
    listening = server._httpd.socket  # checked itself: after stop, another process may take the port
    server.stop()
    server.stop()  # a second stop does nothing
    assert not any(t.name == f"scripted-model-server:{port}" for t in threading.enumerate())
    assert listening.fileno() == -1, "the listening socket is closed"


def test_the_command_line_runner_serves_until_interrupted(tmp_path: Path) -> None:
    script = tmp_path / "script.yaml"
    script.write_text("replies:\n  - text: from the runner\n")
    runner = subprocess.Popen([sys.executable, "-m", "swarmd.testing", str(script)], stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, text=True)
    try:
        assert runner.stdout is not None
        banner = runner.stdout.readline()
        assert banner.startswith("serving "), runner.stderr and runner.stderr.read()
        base_url = banner.split(" on ")[1].split(" ")[0]
        body = json.dumps({"model": "m", "messages": [{"role": "user", "content": "x"}]}).encode()
        status, _, answer = post(base_url + "/v1/messages", body)
        assert (status, json.loads(answer)["content"][0]["text"]) == (200, "from the runner")
        assert runner.stdout.readline() == "POST /v1/messages conversation 0 reply 0 -> 200\n"
    finally:
        runner.send_signal(signal.SIGINT)
        out, err = runner.communicate(timeout=60)
    assert (runner.returncode, err) == (0, "")
