"""swarmd.testing's scripted model server, over real HTTP on loopback: OpenAI chat completions and Anthropic
messages mostly through litellm's own client (the path swarmd's built-in agent takes), the OpenAI Responses
API (what Codex CLI speaks) mostly as plain HTTP requests."""

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
                               "(the request holds 1 assistant turns)"]


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
        assert post(server.openai_base + "/responses", b'{"model": "m", "input": 3}')[2]["error"]["message"] == \
            "the request body has no `input`: a text or a list of items"
    assert [(r.api, r.status) for r in server.requests] == [(None, 404), ("anthropic", 400), ("anthropic", 400),
                                                           ("openai", 405), ("responses", 400)]
    assert len(server.failures) == 5 and "no such path: POST /v1/completions" in server.failures[0]


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


# --- the OpenAI Responses API (what Codex CLI speaks), over plain HTTP ---

CODEX = {"model": "gpt-test", "instructions": "You are a worker.", "store": False, "tools": [
    {"type": "function", "name": "bash", "description": "Run a shell command.", "strict": False,
     "parameters": {"type": "object", "properties": {"command": {"type": "string"}}, "required": ["command"]}}]}


def user(text: str) -> dict[str, Any]:
    return {"type": "message", "role": "user", "content": [{"type": "input_text", "text": text}]}


def output(call_id: str, text: str) -> dict[str, Any]:
    return {"type": "function_call_output", "call_id": call_id, "output": text}


REASONING = {"type": "reasoning", "id": "rs_1", "summary": [], "encrypted_content": "opaque"}


def sse(raw: bytes) -> list[dict[str, Any]]:
    """A Responses stream's events, checked: each named by its type, numbered from 0 in order."""
    events = []
    for block in raw.decode().split("\n\n"):
        if block:
            lines = dict(line.split(": ", 1) for line in block.split("\n"))
            events.append(json.loads(lines["data"]))
            assert lines["event"] == events[-1]["type"]
    assert [event["sequence_number"] for event in events] == list(range(len(events)))
    return events


def respond(server: ScriptedModelServer, items: Any, stream: bool = False, path: str = "/v1/responses",
            **extra: Any) -> tuple[int, Any, Any]:
    """One Responses request as Codex sends it; the answer: a response, a stream's events, or an error."""
    body = json.dumps({**CODEX, "input": items, "stream": stream, **extra}).encode()
    status, headers, answer = post(server.base_url + path, body, {"Authorization": "Bearer k"})
    if status == 200:
        answer = sse(answer) if stream else json.loads(answer)
    return status, headers, answer


def final(answer: Any) -> dict[str, Any]:
    """The whole response: as it came, or the one response.completed carries, checked against the stream
    (its items as output_item.done gave them, their text and arguments the deltas joined)."""
    if isinstance(answer, dict):
        return answer
    created, completed = answer[0]["response"], answer[-1]["response"]
    assert (created["status"], created["output"], created["usage"], created["id"]) == (
        "in_progress", [], None, completed["id"])
    assert [e["item"] for e in answer if e["type"] == "response.output_item.done"] == completed["output"]
    for item in completed["output"]:
        joined = "".join(e["delta"] for e in answer if e.get("item_id") == item["id"] and "delta" in e)
        assert joined == (item["content"][0]["text"] if item["type"] == "message" else item["arguments"])
    return completed


def test_responses_a_text_reply_to_a_string_input() -> None:
    with ScriptedModelServer({"replies": [{"text": "Hello there."}]}) as server:
        status, _, answer = respond(server, "Fix the bug.")
    assert status == 200
    assert (answer["object"], answer["status"], answer["model"]) == ("response", "completed", "gpt-test")
    assert answer["output"] == [{"id": "msg_scripted_0_0_1", "type": "message", "status": "completed",
                                 "role": "assistant",
                                 "content": [{"type": "output_text", "text": "Hello there.", "annotations": []}]}]
    [request] = server.requests
    assert (request.api, request.conversation, request.reply, request.status) == ("responses", 0, 0, 200)
    assert server.failures == []


@pytest.mark.parametrize("stream", [False, True], ids=["whole", "streamed"])
def test_responses_text_function_calls_and_usage(stream: bool) -> None:
    reply = Reply(
        text="Let me look around first.",
        tool_calls=[ToolCall("bash", {"command": "ls -la"}),
                    ToolCall("bash", {"command": "cat 'a \"b\".txt'"}, id="x1")],
        usage=Usage(input_tokens=1200, output_tokens=35, cached_tokens=1000, cache_creation_tokens=100),
    )
    with ScriptedModelServer(Script([Conversation([reply])])) as server:
        status, headers, answer = respond(server, [user("Fix the bug.")], stream=stream)
    assert status == 200
    response = final(answer)
    message, *calls = response["output"]
    assert message["content"][0]["text"] == "Let me look around first."
    assert [(c["type"], c["call_id"], c["name"], json.loads(c["arguments"]), c["status"]) for c in calls] == [
        ("function_call", "call_0_0_0", "bash", {"command": "ls -la"}, "completed"),
        ("function_call", "x1", "bash", {"command": "cat 'a \"b\".txt'"}, "completed")]
    ids = [response["id"], *(item["id"] for item in response["output"])]
    assert len(set(ids)) == 4 and [i.split("_")[0] for i in ids] == ["resp", "msg", "fc", "fc"]
    assert response["usage"] == {"input_tokens": 1200, "input_tokens_details": {"cached_tokens": 1000,
                                                                                "cache_write_tokens": 100},
                                 "output_tokens": 35, "output_tokens_details": {"reasoning_tokens": 0},
                                 "total_tokens": 1235}
    assert response["tools"] == CODEX["tools"] and response["instructions"] == "You are a worker."
    if stream:
        assert headers["Content-Type"] == "text/event-stream"
        call = ["response.output_item.added", "response.function_call_arguments.delta",
                "response.function_call_arguments.delta", "response.function_call_arguments.done",
                "response.output_item.done"]
        assert [e["type"] for e in answer] == [
            "response.created", "response.in_progress", "response.output_item.added",
            "response.content_part.added", "response.output_text.delta", "response.output_text.delta",
            "response.output_text.done", "response.content_part.done", "response.output_item.done",
            *call, *call, "response.completed"]
        added = answer[2]["item"]
        assert (added["id"], added["status"], added["content"]) == (message["id"], "in_progress", [])
        assert answer[6]["text"] == message["content"][0]["text"]


def test_responses_a_run_of_assistant_items_is_one_turn() -> None:
    """The reply is numbered by the runs of assistant items (message and calls, reasoning between them
    counting as nothing) in `input`; a retried request gets the same reply under new ids. The opening is
    what comes before the first assistant item, as Codex sends it: its environment, then the task; a later
    developer message does not change the conversation."""
    script = {"conversations": [
        {"match": "You are the planner.", "replies": [{"text": "not this one"}]},
        {"match": ["You are a worker.", "Be brief.", "Fix the bug."], "replies": [
            {"text": "Looking.", "tool_calls": [{"name": "bash", "arguments": {"command": "ls"}},
                                                {"name": "bash", "arguments": {"command": "cat main.c"}}]},
            {"tool_calls": [{"name": "bash", "arguments": {"command": "make test"}}],
             "expect": {"tool_result_contains": ["README.md", "int main"], "last_contains": "int main",
                        "contains": ["Fix the bug.", "cat main.c"]}},
            {"text": "Done.", "expect": {"tool_result_contains": "passed"}},
        ]},
    ]}
    opening = [{"type": "message", "role": "developer", "content": "Be brief."},
               user("<environment_context>\n  <cwd>/work</cwd>\n</environment_context>"), user("Fix the bug.")]
    with ScriptedModelServer(script) as server:
        first = respond(server, opening)[2]["output"]
        message, *calls = first
        second_input = [*opening, REASONING, message, REASONING, *calls,
                        output("call_1_0_0", "README.md\nmain.c\n"), output("call_1_0_1", "int main() {}")]
        second = final(respond(server, second_input, stream=True)[2])["output"]
        third_input = [*second_input, REASONING, *second, output("call_1_1_0", "all tests passed"),
                       {"role": "developer", "content": "You are the planner."}]  # a message without its type
        third = respond(server, third_input)[2]
        again = respond(server, third_input)[2]
    assert [(r.conversation, r.reply, r.status) for r in server.requests] == [(1, 0, 200), (1, 1, 200), (1, 2, 200),
                                                                             (1, 2, 200)]
    assert server.failures == []
    assert [item["call_id"] for item in second] == ["call_1_1_0"]
    assert third["output"][0]["content"][0]["text"] == again["output"][0]["content"][0]["text"] == "Done."
    ids = [item["id"] for item in [*first, *second, *third["output"], *again["output"]]] + [third["id"], again["id"]]
    assert len(set(ids)) == len(ids), ids


def test_responses_unmet_expectations_are_answered_400_and_recorded() -> None:
    script = {"replies": [{"tool_calls": [{"name": "bash", "arguments": {"command": "ls"}}]},
                          {"text": "x", "expect": {"tool_result_contains": "README.md"}}]}
    call = {"type": "function_call", "call_id": "call_0_0_0", "name": "bash", "arguments": '{"command": "ls"}'}
    with ScriptedModelServer(script) as server:
        wrong = respond(server, [user("Fix the bug."), call, output("call_0_0_0", "no such file")])
        missing = respond(server, [user("Fix the bug."), call, user("Go on.")], stream=True)
    message = "conversation 0 reply 1: expected the latest tool results to contain 'README.md', but it was " \
              "'no such file'"
    assert wrong[::2] == (400, {"error": {"message": message, "type": "invalid_request_error", "param": None,
                                          "code": None}})
    assert missing[0] == 400 and missing[2]["error"]["message"].endswith(
        "there is no tool result after the last assistant message")
    assert server.failures == [message, missing[2]["error"]["message"]]
    assert [(r.api, r.reply, r.status) for r in server.requests] == [("responses", 1, 400), ("responses", 1, 400)]


def test_responses_errors_come_in_openais_shape_with_retry_after() -> None:
    script = {"replies": [{"text": "finally", "errors": [{"status": 429, "retry_after": 2.5},
                                                         {"status": 503, "message": "busy", "code": "c1"}]}]}
    with ScriptedModelServer(script, api_key="k") as server:
        limited = respond(server, "Fix the bug.", stream=True)
        busy = respond(server, "Fix the bug.", stream=True)
        done = respond(server, "Fix the bug.", stream=True)
        status, _, refused = post(server.openai_base + "/responses", b'{"input": "x"}', {"Authorization": "Bearer no"})
    assert (limited[0], limited[1]["Retry-After"], limited[2]) == (429, "2.5", {"error": {
        "message": "Too Many Requests (scripted error 429)", "type": "requests", "param": None,
        "code": "rate_limit_exceeded"}})
    assert (busy[0], busy[1]["Retry-After"], busy[2]) == (503, None, {"error": {
        "message": "busy", "type": "server_error", "param": None, "code": "c1"}})
    assert final(done[2])["output"][0]["content"][0]["text"] == "finally"
    assert (status, refused["error"]["code"]) == (401, "invalid_api_key")
    assert [r.status for r in server.requests] == [429, 503, 200, 401]
    assert server.failures == []


def test_the_openai_sdk_rebuilds_a_streamed_response() -> None:
    """The SDK's own stream helper checks the events' order and adds them up."""
    openai = pytest.importorskip("openai")
    reply = {"text": "Let me look around first.", "tool_calls": [{"name": "bash", "arguments": {"command": "ls"}}],
             "usage": {"input_tokens": 500, "output_tokens": 20, "cached_tokens": 300}}
    with ScriptedModelServer({"replies": [reply]}) as server:
        client = openai.OpenAI(base_url=server.openai_base, api_key="k", max_retries=0)
        with client.responses.stream(model="gpt-test", instructions="You are a worker.", input="Fix the bug.",
                                     tools=CODEX["tools"]) as events:
            response = events.get_final_response()
    assert response.output_text == "Let me look around first."
    assert [(item.type, getattr(item, "arguments", None)) for item in response.output] == [
        ("message", None), ("function_call", '{"command": "ls"}')]
    assert (response.usage.input_tokens, response.usage.input_tokens_details.cached_tokens) == (500, 300)
    assert server.failures == []


def test_every_api_answers_under_a_prefix_and_head_anywhere() -> None:
    """A client whose base URL has a prefix reaches each API; a query is ignored. HEAD is answered 200."""
    chat = json.dumps({"model": "m", "messages": HELLO}).encode()
    responses = json.dumps({**CODEX, "input": "Fix the bug."}).encode()
    with ScriptedModelServer({"replies": [{"text": "hi"}]}) as server:
        for path, body in [("/agent/T0K/v1/chat/completions", chat), ("/agent/T0K/chat/completions", chat),
                           ("/agent/T0K/v1/responses", responses), ("/agent/T0K/responses?x=1", responses),
                           ("/agent/T0K/v1/messages?beta=true", chat), ("/v1/responses/", responses)]:
            status, _, answer = post(server.base_url + path, body)
            assert status == 200, (path, answer)
        assert post(server.base_url + "/agent/v1/my-responses", responses)[0] == 404
        assert post(server.base_url + "/agent/T0K/v1/responses", None, method="GET")[0] == 405
        heads = [post(server.base_url + path, None, method="HEAD") for path in ("/", "/agent/T0K/v1/messages")]
    assert [(status, answer) for status, _, answer in heads] == [(200, b""), (200, b"")]
    assert [(r.method, r.api, r.status) for r in server.requests] == [
        ("POST", "openai", 200), ("POST", "openai", 200), ("POST", "responses", 200), ("POST", "responses", 200),
        ("POST", "anthropic", 200), ("POST", "responses", 200), ("POST", None, 404), ("GET", "responses", 405),
        ("HEAD", None, 200), ("HEAD", "anthropic", 200)]
    assert len(server.failures) == 2  # the unknown path and the GET; HEAD is no failure
