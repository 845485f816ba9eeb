"""OpenAI chat completions (`POST /v1/chat/completions`) for the scripted server, and OpenAI's error shape,
which the Responses API shares and unknown paths are answered in."""

from __future__ import annotations

import time
from collections.abc import Iterator, Mapping
from typing import Any

from swarmd.testing.script import ErrorReply, Turn
from swarmd.testing.wire import Api, arguments, event, message, model, pieces, read_messages

_ERRORS = {400: ("invalid_request_error", None), 401: ("invalid_request_error", "invalid_api_key"),
           403: ("permission_error", None), 404: ("invalid_request_error", "model_not_found"),
           429: ("requests", "rate_limit_exceeded")}


def error_body(error: ErrorReply) -> dict[str, Any]:
    kind, code = _ERRORS.get(error.status, ("server_error" if error.status >= 500 else "invalid_request_error", None))
    return {"error": {"message": message(error), "type": error.type or kind, "param": None,
                      "code": error.code or code}}


def call_id(turn: Turn, n: int, given: str | None) -> str:
    """A tool call's id: the scripted one, or call_<conversation>_<reply>_<n> (the Responses API's too)."""
    return given or f"call_{turn.conversation}_{turn.index}_{n}"


def _usage(turn: Turn) -> dict[str, Any]:
    assert turn.usage is not None and turn.usage.input_tokens is not None and turn.usage.output_tokens is not None
    usage: dict[str, Any] = {"prompt_tokens": turn.usage.input_tokens, "completion_tokens": turn.usage.output_tokens,
                             "total_tokens": turn.usage.input_tokens + turn.usage.output_tokens}
    if turn.usage.cached_tokens:
        usage["prompt_tokens_details"] = {"cached_tokens": turn.usage.cached_tokens}
    return usage


def _head(turn: Turn, body: Mapping[str, Any], kind: str) -> dict[str, Any]:
    return {"id": f"chatcmpl-scripted-{turn.conversation}-{turn.index}", "object": kind,
            "created": int(time.time()), "model": model(body), "system_fingerprint": None}


def reply(turn: Turn, body: Mapping[str, Any]) -> dict[str, Any]:
    assert turn.reply is not None
    calls = turn.reply.tool_calls
    answer: dict[str, Any] = {"role": "assistant", "content": turn.reply.text or (None if calls else "")}
    if calls:
        answer["tool_calls"] = [{"id": call_id(turn, n, call.id), "type": "function",
                                 "function": {"name": call.name, "arguments": arguments(call.arguments)}}
                                for n, call in enumerate(calls)]
    choice = {"index": 0, "message": answer, "logprobs": None, "finish_reason": "tool_calls" if calls else "stop"}
    return {**_head(turn, body, "chat.completion"), "choices": [choice], "usage": _usage(turn)}


def _chunks(turn: Turn, body: Mapping[str, Any]) -> Iterator[dict[str, Any]]:
    assert turn.reply is not None
    head = _head(turn, body, "chat.completion.chunk")
    include_usage = bool((body.get("stream_options") or {}).get("include_usage"))
    tail = {"usage": None} if include_usage else {}

    def chunk(delta: dict[str, Any], finish_reason: str | None = None) -> dict[str, Any]:
        choice = {"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish_reason}
        return {**head, "choices": [choice], **tail}

    yield chunk({"role": "assistant", "content": ""})
    for piece in pieces(turn.reply.text or ""):
        yield chunk({"content": piece})
    for n, call in enumerate(turn.reply.tool_calls):
        yield chunk({"tool_calls": [{"index": n, "id": call_id(turn, n, call.id), "type": "function",
                                     "function": {"name": call.name, "arguments": ""}}]})
        for piece in pieces(arguments(call.arguments)):
            yield chunk({"tool_calls": [{"index": n, "function": {"arguments": piece}}]})
    yield chunk({}, "tool_calls" if turn.reply.tool_calls else "stop")
    if include_usage:
        yield {**head, "choices": [], "usage": _usage(turn)}


def stream(turn: Turn, body: Mapping[str, Any]) -> Iterator[str]:
    """`chat.completion.chunk`s, the last with usage when `stream_options.include_usage` asks, then [DONE]."""
    for chunk in _chunks(turn, body):
        yield event(chunk)
    yield "data: [DONE]\n\n"


API = Api("openai", ("/chat/completions",), read_messages, reply, stream, error_body)
