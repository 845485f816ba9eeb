"""The OpenAI Responses API (`POST /v1/responses`) for the scripted server: what OpenAI's Codex CLI speaks.

A request's `input` is a text or a list of items. Its opening is `instructions` and the messages (system,
developer, user) before the first assistant item: Codex sends its environment as a first user message and
the task in a second, and adds developer messages later in a session, which the opening leaves out so that
it stays the same. One assistant turn is a run of assistant items (assistant `message`s and
`function_call`s) with no item of the other side (a message of another role, a `function_call_output`)
between them: a model's reply holds its text and all its calls. `reasoning` items, and items of any other
type, count as nothing. The tool results `expect` looks at are the `function_call_output`s after the last
assistant item.

A reply is a `response` whose `output` holds a `message` item (when the reply has text, or nothing at all)
then one `function_call` item per call. Streamed, it is the event sequence of the real API: see `_events`.
"""

from __future__ import annotations

import time
from collections.abc import Iterator, Mapping
from typing import Any

from swarmd.testing.openai_chat import call_id, error_body
from swarmd.testing.script import Transcript, Turn, content_text
from swarmd.testing.wire import Api, BadRequest, arguments, event, model, pieces

_ASSISTANT, _OTHER = "assistant", "other"


def _side(item: Mapping[str, Any]) -> str | None:
    """Whose item it is: the assistant's, the other side's (user, system, tools), or None: it counts as nothing."""
    kind = item.get("type", "message" if "role" in item else None)  # a message may come without its type
    if kind == "message":
        return _ASSISTANT if item.get("role") == "assistant" else _OTHER
    return {"function_call": _ASSISTANT, "function_call_output": _OTHER}.get(str(kind))


def _item_text(item: Mapping[str, Any]) -> str:
    if item.get("type") == "function_call":
        return f"{item.get('name')} {item.get('arguments')}"
    if item.get("type") == "function_call_output":
        return content_text(item.get("output"))
    return content_text(item.get("content"))


def read(body: Any) -> Transcript:
    if not isinstance(body, dict) or not isinstance(body.get("input"), (str, list)):
        raise BadRequest("the request body has no `input`: a text or a list of items")
    given = body["input"]
    if isinstance(given, str):
        given = [{"type": "message", "role": "user", "content": given}]
    items = [item for item in given if isinstance(item, Mapping) and _side(item) is not None]
    sides = [_side(item) for item in items]
    first_assistant = next((n for n, side in enumerate(sides) if side == _ASSISTANT), len(items))
    turn = sum(1 for n, side in enumerate(sides) if side == _ASSISTANT and (n == 0 or sides[n - 1] != _ASSISTANT))
    last_assistant = max((n for n, side in enumerate(sides) if side == _ASSISTANT), default=-1)
    results = [content_text(item.get("output")) for item in items[last_assistant + 1:]
               if item.get("type") == "function_call_output"]
    instructions = content_text(body.get("instructions"))
    return Transcript(
        opening="\n".join([instructions] + [_item_text(item) for item in items[:first_assistant]]),
        turn=turn,
        last=_item_text(items[-1]) if items else "",
        everything="\n".join([instructions] + [_item_text(item) for item in items]),
        tool_results="\n".join(results) if results else None,
    )


def _usage(turn: Turn) -> dict[str, Any]:
    """`input_tokens` counts the whole prompt, the cached part included, as Usage does."""
    usage = turn.usage
    assert usage is not None and usage.input_tokens is not None and usage.output_tokens is not None
    return {"input_tokens": usage.input_tokens,
            "input_tokens_details": {"cached_tokens": usage.cached_tokens,
                                     "cache_write_tokens": usage.cache_creation_tokens},
            "output_tokens": usage.output_tokens, "output_tokens_details": {"reasoning_tokens": 0},
            "total_tokens": usage.input_tokens + usage.output_tokens}


def _output(turn: Turn) -> list[dict[str, Any]]:
    """The output items. Their ids, like the response's, hold the conversation, the reply and the serial."""
    assert turn.reply is not None
    scripted, ids = turn.reply, f"scripted_{turn.conversation}_{turn.index}_{turn.serial}"
    items: list[dict[str, Any]] = []
    if scripted.text or not scripted.tool_calls:
        items.append({"id": f"msg_{ids}", "type": "message", "status": "completed", "role": "assistant",
                      "content": [{"type": "output_text", "text": scripted.text or "", "annotations": []}]})
    items += [{"id": f"fc_{ids}_{n}", "type": "function_call", "status": "completed",
               "call_id": call_id(turn, n, call.id), "name": call.name, "arguments": arguments(call.arguments)}
              for n, call in enumerate(scripted.tool_calls)]
    return items


def reply(turn: Turn, body: Mapping[str, Any]) -> dict[str, Any]:
    return {"id": f"resp_scripted_{turn.conversation}_{turn.index}_{turn.serial}", "object": "response",
            "created_at": int(time.time()), "status": "completed", "error": None, "incomplete_details": None,
            "instructions": body.get("instructions"), "model": model(body), "output": _output(turn),
            "parallel_tool_calls": body.get("parallel_tool_calls", True),
            "tool_choice": body.get("tool_choice", "auto"), "tools": body.get("tools") or [], "usage": _usage(turn)}


def _events(turn: Turn, body: Mapping[str, Any]) -> Iterator[dict[str, Any]]:
    """response.created and response.in_progress (no output yet); per output item: output_item.added, then
    for a message content_part.added, output_text.delta in pieces, output_text.done, content_part.done, for a
    call function_call_arguments.delta in pieces and function_call_arguments.done, then output_item.done;
    last response.completed, the whole response with its usage."""
    whole = reply(turn, body)
    start = {**whole, "status": "in_progress", "output": [], "usage": None}
    yield {"type": "response.created", "response": start}
    yield {"type": "response.in_progress", "response": start}
    for index, item in enumerate(whole["output"]):
        at = {"item_id": item["id"], "output_index": index}
        if item["type"] == "message":
            text = item["content"][0]["text"]
            yield {"type": "response.output_item.added", "output_index": index,
                   "item": {**item, "status": "in_progress", "content": []}}
            part = {"type": "output_text", "text": "", "annotations": []}
            yield {"type": "response.content_part.added", **at, "content_index": 0, "part": part}
            for piece in pieces(text):
                yield {"type": "response.output_text.delta", **at, "content_index": 0, "delta": piece, "logprobs": []}
            yield {"type": "response.output_text.done", **at, "content_index": 0, "text": text, "logprobs": []}
            yield {"type": "response.content_part.done", **at, "content_index": 0, "part": {**part, "text": text}}
        else:
            yield {"type": "response.output_item.added", "output_index": index,
                   "item": {**item, "status": "in_progress", "arguments": ""}}
            for piece in pieces(item["arguments"]):
                yield {"type": "response.function_call_arguments.delta", **at, "delta": piece}
            yield {"type": "response.function_call_arguments.done", **at, "arguments": item["arguments"]}
        yield {"type": "response.output_item.done", "output_index": index, "item": item}
    yield {"type": "response.completed", "response": whole}


def stream(turn: Turn, body: Mapping[str, Any]) -> Iterator[str]:
    """The events of `_events`, each named by its type and numbered by `sequence_number` from 0."""
    for number, data in enumerate(_events(turn, body)):
        yield event({**data, "sequence_number": number}, data["type"])


API = Api("responses", ("/responses",), read, reply, stream, error_body)
