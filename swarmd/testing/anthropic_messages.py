"""Anthropic messages (`POST /v1/messages`) for the scripted server."""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping
from typing import Any

from swarmd.testing.script import ErrorReply, Turn
from swarmd.testing.wire import Api, arguments, event, message, model, pieces, read_messages

_ERRORS = {400: "invalid_request_error", 401: "authentication_error", 403: "permission_error",
           404: "not_found_error", 413: "request_too_large", 429: "rate_limit_error", 529: "overloaded_error"}


def error_body(error: ErrorReply) -> dict[str, Any]:
    kind = _ERRORS.get(error.status, "api_error" if error.status >= 500 else "invalid_request_error")
    return {"type": "error", "error": {"type": error.type or kind, "message": message(error)}}


def _call_id(turn: Turn, n: int, given: str | None) -> str:
    return given or f"toolu_{turn.conversation}_{turn.index}_{n}"


def _usage(turn: Turn) -> dict[str, Any]:
    assert turn.usage is not None and turn.usage.input_tokens is not None
    cached, created = turn.usage.cached_tokens, turn.usage.cache_creation_tokens
    usage: dict[str, Any] = {"input_tokens": turn.usage.input_tokens - cached - created,
                             "output_tokens": turn.usage.output_tokens}
    if cached or created:
        usage.update(cache_read_input_tokens=cached, cache_creation_input_tokens=created)
    return usage


def _input(given: Mapping[str, Any] | str) -> Any:
    """A tool_use block's `input` is JSON, not text: raw arguments go as the object they parse to, or (not
    what the real API would do) as a JSON string. Streaming sends them byte for byte."""
    if not isinstance(given, str):
        return given
    try:
        parsed = json.loads(given)
    except ValueError:
        return given
    return parsed if isinstance(parsed, dict) else given


def reply(turn: Turn, body: Mapping[str, Any]) -> dict[str, Any]:
    assert turn.reply is not None
    scripted = turn.reply
    content: list[dict[str, Any]] = []
    if scripted.text or not scripted.tool_calls:
        content.append({"type": "text", "text": scripted.text or ""})
    content += [{"type": "tool_use", "id": _call_id(turn, n, call.id), "name": call.name,
                 "input": _input(call.arguments)} for n, call in enumerate(scripted.tool_calls)]
    return {"id": f"msg_scripted_{turn.conversation}_{turn.index}", "type": "message", "role": "assistant",
            "model": model(body), "content": content, "stop_reason": "tool_use" if scripted.tool_calls else "end_turn",
            "stop_sequence": None, "usage": _usage(turn)}


def _events(turn: Turn, body: Mapping[str, Any]) -> Iterator[tuple[str, dict[str, Any]]]:
    assert turn.reply is not None
    whole = reply(turn, body)
    usage = whole["usage"]
    start = {**whole, "content": [], "stop_reason": None, "usage": {**usage, "output_tokens": 1}}
    yield "message_start", {"type": "message_start", "message": start}
    yield "ping", {"type": "ping"}
    first_call = len(whole["content"]) - len(turn.reply.tool_calls)
    for index, block in enumerate(whole["content"]):
        if index < first_call:
            opening, kind, key, parts = {"type": "text", "text": ""}, "text_delta", "text", pieces(block["text"])
        else:
            opening = {"type": "tool_use", "id": block["id"], "name": block["name"], "input": {}}
            raw = arguments(turn.reply.tool_calls[index - first_call].arguments)  # raw ones unchanged
            kind, key, parts = "input_json_delta", "partial_json", [""] + pieces(raw)
        yield "content_block_start", {"type": "content_block_start", "index": index, "content_block": opening}
        for piece in parts:
            yield "content_block_delta", {"type": "content_block_delta", "index": index,
                                          "delta": {"type": kind, key: piece}}
        yield "content_block_stop", {"type": "content_block_stop", "index": index}
    yield "message_delta", {"type": "message_delta", "usage": usage,
                            "delta": {"stop_reason": whole["stop_reason"], "stop_sequence": None}}
    yield "message_stop", {"type": "message_stop"}


def stream(turn: Turn, body: Mapping[str, Any]) -> Iterator[str]:
    """message_start, ping, content_block_start/delta/stop per block, message_delta, message_stop."""
    for name, data in _events(turn, body):
        yield event(data, name)


API = Api("anthropic", ("/v1/messages",), read_messages, reply, stream, error_body)
