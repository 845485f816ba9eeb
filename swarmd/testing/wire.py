"""What the server's wire formats share: the `Api` record it dispatches on, and small helpers.

Each API lives in its own module (openai_chat, openai_responses, anthropic_messages), which exposes one
`API`; the server (swarmd.testing.server) only handles HTTP, and picks the `Api` by the request's path.
"""

from __future__ import annotations

import http.client
import json
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any

from swarmd.testing.script import ErrorReply, Transcript, Turn


class BadRequest(Exception):
    """A request body an API cannot read; the message says what is wrong with it."""


@dataclass(frozen=True)
class Api:
    """One API the server speaks: where it is asked, how its requests read, and how its answers look."""

    name: str  # as in RecordedRequest.api
    endings: tuple[str, ...]  # POST paths it answers, after any prefix: a client's base URL may have one
    read: Callable[[Any], Transcript]  # the parsed JSON body; raises BadRequest
    reply: Callable[[Turn, Mapping[str, Any]], dict[str, Any]]  # the whole reply to a request body
    stream: Callable[[Turn, Mapping[str, Any]], Iterator[str]]  # the reply as server-sent events
    error: Callable[[ErrorReply], dict[str, Any]]  # the body of an error answer

    def answers(self, path: str) -> bool:
        return any(path.endswith(ending) for ending in self.endings)


def read_messages(body: Any) -> Transcript:
    """The Transcript of a chat completions or Anthropic messages body."""
    if not isinstance(body, dict) or not isinstance(body.get("messages"), list):
        raise BadRequest("the request body has no `messages` list")
    return Transcript.of(body)


def model(body: Mapping[str, Any]) -> str:
    """The model name the request gave, echoed back."""
    return str(body.get("model") or "scripted")


def message(error: ErrorReply) -> str:
    return error.message or f"{http.client.responses.get(error.status, 'Error')} (scripted error {error.status})"


def pieces(text: str, size: int = 16) -> list[str]:
    """Streamed text comes in several pieces, so that clients are seen to join them."""
    return [text[start:start + size] for start in range(0, len(text), size)]


def arguments(given: Mapping[str, Any] | str) -> str:
    """A tool call's arguments as sent: a mapping as JSON, a raw string as it is."""
    return given if isinstance(given, str) else json.dumps(given)


def event(data: Mapping[str, Any], name: str | None = None) -> str:
    """One server-sent event: `data:` and, if named, `event:` before it."""
    return (f"event: {name}\n" if name else "") + f"data: {json.dumps(data)}\n\n"
