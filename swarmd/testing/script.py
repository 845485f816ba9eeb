"""The script a ScriptedModelServer plays: its model, its validation, and how a request picks its answer.

A script is a list of conversations. A request belongs to the first conversation whose `match` texts all
occur in its opening (system prompt and first user message); the reply it gets is the one numbered by the
assistant turns it already holds: its assistant messages (swarmd.testing.openai_responses says what a turn
is in the Responses API). Nothing else is remembered between requests but how many of a reply's scripted
`errors` were answered, so conversations run concurrently and a retry gets the same reply.
"""

from __future__ import annotations

import dataclasses
import json
import os
import reprlib
import threading
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, NoReturn

from swarmd.errors import UsageError, ValidationError


@dataclass(frozen=True)
class ToolCall:
    """A call of the tool `name`. `arguments` is a mapping (sent as JSON) or a raw string sent as is."""

    name: str
    arguments: Mapping[str, Any] | str = dataclasses.field(default_factory=dict)
    id: str | None = None  # default: call_<conversation>_<reply>_<n> (OpenAI, both APIs), toolu_... (Anthropic)


@dataclass(frozen=True)
class Usage:
    """Token counts. `input_tokens` counts the whole prompt, `cached_tokens` of it read from the cache and
    `cache_creation_tokens` written to it (OpenAI reports `prompt_tokens` so; Anthropic's `input_tokens`
    leaves both out, and the server subtracts them). A count left out is estimated: characters / 4."""

    input_tokens: int | None = None
    output_tokens: int | None = None
    cached_tokens: int = 0
    cache_creation_tokens: int = 0


@dataclass(frozen=True)
class ErrorReply:
    """An error answered instead of a reply, in the shape of the API asked. `type` and `code` default
    to what that API sends for `status`; `retry_after` (seconds) adds a Retry-After header."""

    status: int
    message: str | None = None
    type: str | None = None
    code: str | None = None
    retry_after: float | None = None


@dataclass(frozen=True)
class Expect:
    """Checks on the request a reply answers; each is a text or a list of texts that must all occur."""

    contains: str | Sequence[str] = ()  # anywhere in the request: system prompt, messages, tool calls
    last_contains: str | Sequence[str] = ()  # in the last message
    tool_result_contains: str | Sequence[str] = ()  # in the tool results after the last assistant message


@dataclass(frozen=True)
class Reply:
    text: str | None = None
    tool_calls: Sequence[ToolCall] = ()
    usage: Usage | None = None
    errors: Sequence[ErrorReply] = ()  # answered one per request before this reply is given
    delay: float = 0  # seconds to wait before giving the reply
    expect: Expect | None = None


@dataclass(frozen=True)
class Conversation:
    replies: Sequence[Reply]
    match: str | Sequence[str] = ()  # texts that must all occur in the opening; none: every request


@dataclass(frozen=True)
class Script:
    conversations: Sequence[Conversation]

    @classmethod
    def from_dict(cls, data: Any, source: str = "script") -> Script:
        """Validate plain data (`{conversations: [...]}`, or `{replies: [...]}` for a single conversation);
        a problem raises swarmd.errors.ValidationError naming `source` and the field."""
        return _Reader(source).script(data)

    @classmethod
    def load(cls, path: str | os.PathLike[str]) -> Script:
        from swarmd import yamlio  # imports PyYAML: only when a script file is read

        try:
            with open(path, "rb") as file:
                text = file.read()
        except OSError as exc:
            raise UsageError(f"{path}: cannot read the script: {exc.strerror}") from None
        return cls.from_dict(yamlio.load(text, str(path)), str(path))

    def validated(self) -> Script:
        """A copy checked as a YAML script would be (building the dataclasses checks nothing)."""
        return Script.from_dict(dataclasses.asdict(self))


_NOTHING = object()
_SHORT = reprlib.Repr()
_SHORT.maxstring = _SHORT.maxother = 80


def describe(value: Any, limit: int = 80) -> str:
    text = _SHORT.repr(value)
    return text if len(text) <= limit else text[:limit - 3] + "..."


class _Reader:
    """Turns plain data into the script's dataclasses; the first problem raises, naming the field."""

    def __init__(self, source: str) -> None:
        self.source = source

    def fail(self, where: str, message: str, value: Any = _NOTHING) -> NoReturn:
        got = "" if value is _NOTHING else f" (got {describe(value)})"
        field = f"field `{where}`: " if where else ""
        raise ValidationError([f"{self.source}: {field}{message}{got}"])

    def mapping(self, value: Any, where: str, keys: Sequence[str], required: Sequence[str] = ()) -> dict:
        if not isinstance(value, Mapping):
            self.fail(where, "expected a mapping of keys to values", value)
        prefix = f"{where}." if where else ""
        for key in value:
            if key not in keys:
                self.fail(f"{prefix}{key}", f"unknown key (check its spelling; the keys here are {', '.join(keys)})")
        for key in required:
            if value.get(key) is None:
                self.fail(f"{prefix}{key}", "required, but missing")
        return {key: item for key, item in value.items() if item is not None}

    def items(self, value: Any, where: str) -> list[Any]:
        if not isinstance(value, (list, tuple)):
            self.fail(where, "expected a list", value)
        return list(value)

    def text(self, value: Any, where: str) -> str:
        if not isinstance(value, str):
            self.fail(where, "expected text (quote it if YAML read it as something else)", value)
        return value

    def texts(self, value: Any, where: str) -> tuple[str, ...]:
        if isinstance(value, str):
            return (value,)
        return tuple(self.text(item, f"{where}.{n}") for n, item in enumerate(self.items(value, where)))

    def whole(self, value: Any, where: str, low: int = 0, high: int | None = None) -> int:
        if isinstance(value, bool) or not isinstance(value, int):
            self.fail(where, "expected a whole number", value)
        if value < low or (high is not None and value > high):
            self.fail(where, f"expected a number from {low}" + (f" to {high}" if high is not None else " up"), value)
        return value

    def seconds(self, value: Any, where: str) -> float:
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 <= value < float("inf"):
            self.fail(where, "expected a number of seconds, 0 or more", value)
        return float(value)

    def script(self, data: Any) -> Script:
        if isinstance(data, Mapping) and "replies" in data and "conversations" not in data:
            data = {"conversations": [dict(data)]}  # `match:` may come along
        data = self.mapping(data, "", ("conversations",), required=("conversations",))
        found = self.items(data["conversations"], "conversations")
        if not found:
            self.fail("conversations", "the script has no conversation; give at least one")
        return Script(tuple(self.conversation(item, f"conversations.{n}") for n, item in enumerate(found)))

    def conversation(self, data: Any, where: str) -> Conversation:
        data = self.mapping(data, where, ("match", "replies"), required=("replies",))
        replies = self.items(data["replies"], f"{where}.replies")
        return Conversation(
            replies=tuple(self.reply(item, f"{where}.replies.{n}") for n, item in enumerate(replies)),
            match=self.texts(data.get("match", ()), f"{where}.match"),
        )

    def reply(self, data: Any, where: str) -> Reply:
        data = self.mapping(data, where, ("text", "tool_calls", "usage", "errors", "delay", "expect"))
        return Reply(
            text=self.text(data["text"], f"{where}.text") if "text" in data else None,
            tool_calls=tuple(self.tool_call(item, f"{where}.tool_calls.{n}")
                             for n, item in enumerate(self.items(data.get("tool_calls", ()), f"{where}.tool_calls"))),
            usage=self.usage(data["usage"], f"{where}.usage") if "usage" in data else None,
            errors=tuple(self.error(item, f"{where}.errors.{n}")
                         for n, item in enumerate(self.items(data.get("errors", ()), f"{where}.errors"))),
            delay=self.seconds(data.get("delay", 0), f"{where}.delay"),
            expect=self.expect(data["expect"], f"{where}.expect") if "expect" in data else None,
        )

    def tool_call(self, data: Any, where: str) -> ToolCall:
        data = self.mapping(data, where, ("name", "arguments", "id"), required=("name",))
        arguments = data.get("arguments", {})
        if not isinstance(arguments, str):
            if not isinstance(arguments, Mapping):
                self.fail(f"{where}.arguments", "expected a mapping (sent as JSON) or a raw string", arguments)
            try:
                json.dumps(arguments)
            except (TypeError, ValueError) as exc:
                self.fail(f"{where}.arguments", f"cannot be sent as JSON: {exc}")
            arguments = dict(arguments)
        call_id = self.text(data["id"], f"{where}.id") if "id" in data else None
        return ToolCall(self.text(data["name"], f"{where}.name"), arguments, call_id)

    def usage(self, data: Any, where: str) -> Usage:
        keys = ("input_tokens", "output_tokens", "cached_tokens", "cache_creation_tokens")
        counts = {key: self.whole(value, f"{where}.{key}") for key, value in self.mapping(data, where, keys).items()}
        usage = Usage(**counts)
        cached = usage.cached_tokens + usage.cache_creation_tokens
        if usage.input_tokens is not None and cached > usage.input_tokens:
            self.fail(f"{where}.input_tokens", "counts the whole prompt, so it cannot be less than "
                      f"cached_tokens + cache_creation_tokens ({cached})", usage.input_tokens)
        return usage

    def error(self, data: Any, where: str) -> ErrorReply:
        data = self.mapping(data, where, ("status", "message", "type", "code", "retry_after"), required=("status",))
        return ErrorReply(
            status=self.whole(data["status"], f"{where}.status", 400, 599),
            **{key: self.text(data[key], f"{where}.{key}") for key in ("message", "type", "code") if key in data},
            retry_after=self.seconds(data["retry_after"], f"{where}.retry_after") if "retry_after" in data else None,
        )

    def expect(self, data: Any, where: str) -> Expect:
        keys = ("contains", "last_contains", "tool_result_contains")
        data = self.mapping(data, where, keys)
        return Expect(**{key: self.texts(value, f"{where}.{key}") for key, value in data.items()})


@dataclass(frozen=True)
class Transcript:
    """What the script looks at in a request's body, read the same way for every API. `of` reads chat
    completions and Anthropic messages; swarmd.testing.openai_responses reads the Responses API's
    `input`."""

    opening: str  # the system prompt and the first user message (Responses: what precedes the assistant)
    turn: int  # assistant turns in the request: the number of the reply to give
    last: str  # the last message
    everything: str  # the system prompt and every message, tool calls included
    tool_results: str | None  # the tool results after the last assistant message; None if none

    @classmethod
    def of(cls, body: Mapping[str, Any]) -> Transcript:
        messages = [m for m in body.get("messages") or () if isinstance(m, Mapping)]
        prompt = content_text(body.get("system"))  # Anthropic's; OpenAI's are messages
        system = [prompt] + [content_text(m.get("content")) for m in messages
                             if m.get("role") in ("system", "developer")]
        first_user = next((content_text(m.get("content")) for m in messages if m.get("role") == "user"), "")
        turn = sum(1 for m in messages if m.get("role") == "assistant")
        last_assistant = max((n for n, m in enumerate(messages) if m.get("role") == "assistant"), default=-1)
        results = [r for m in messages[last_assistant + 1:] for r in _tool_results(m)]
        return cls(
            opening="\n".join(system + [first_user]),
            turn=turn,
            last=_message_text(messages[-1]) if messages else "",
            everything="\n".join([prompt] + [_message_text(m) for m in messages]),
            tool_results="\n".join(results) if results else None,
        )


def content_text(content: Any) -> str:
    """The text of a message's content: a string, or a list of parts (text, input_text, tool_use, tool_result)."""
    if isinstance(content, str):
        return content
    if isinstance(content, (list, tuple)):
        return "\n".join(content_text(part) for part in content)
    if isinstance(content, Mapping):
        if content.get("type") == "tool_use":
            return f"{content.get('name')} {json.dumps(content.get('input'))}"
        if isinstance(content.get("text"), str):
            return content["text"]
        return content_text(content.get("content"))
    return ""


def _message_text(message: Mapping[str, Any]) -> str:
    calls = [call.get("function") or {} for call in message.get("tool_calls") or () if isinstance(call, Mapping)]
    return "\n".join([content_text(message.get("content"))] + [f"{c.get('name')} {c.get('arguments')}" for c in calls])


def _tool_results(message: Mapping[str, Any]) -> list[str]:
    if message.get("role") == "tool":  # OpenAI
        return [content_text(message.get("content"))]
    content = message.get("content")
    if isinstance(content, (list, tuple)):  # Anthropic: tool_result blocks in a user message
        return [content_text(part.get("content")) for part in content
                if isinstance(part, Mapping) and part.get("type") == "tool_result"]
    return []


@dataclass(frozen=True)
class Turn:
    """The answer chosen for one request: `reply` with its `usage`, or `error` instead."""

    conversation: int | None
    index: int | None
    reply: Reply | None = None
    usage: Usage | None = None  # every count filled in
    error: ErrorReply | None = None
    serial: int = 0  # a reply's number among all the replies given, from 1: it makes ids unique


class Playback:
    """Chooses each request's answer; thread-safe. Keeps the scripted-error counters and the failures."""

    def __init__(self, script: Script) -> None:
        self.script = script
        self._lock = threading.Lock()
        self._errors_given: dict[tuple[int, int], int] = {}
        self._failures: list[str] = []
        self._replies_given = 0

    @property
    def failures(self) -> list[str]:
        with self._lock:
            return list(self._failures)

    def fail(self, message: str) -> None:
        with self._lock:
            self._failures.append(message)

    def answer(self, request: Transcript | Mapping[str, Any]) -> Turn:
        """The answer to a request: its Transcript, or a chat completions or Anthropic messages body."""
        seen = request if isinstance(request, Transcript) else Transcript.of(request)
        number = self._conversation_for(seen.opening)
        if number is None:
            return self._failed(None, None, 500, "no conversation of the script matches this request: each "
                                "`match` text must occur in its system prompt and first user message, "
                                f"which are {describe(seen.opening, 200)}")
        replies = self.script.conversations[number].replies
        if seen.turn >= len(replies):
            return self._failed(number, seen.turn, 500, f"the script has no reply {seen.turn} for conversation "
                                f"{number}: it has {len(replies)}, numbered from 0 (the request holds "
                                f"{seen.turn} assistant turns)")
        reply = replies[seen.turn]
        problem = _unmet(reply.expect, seen) if reply.expect else None
        if problem:
            return self._failed(number, seen.turn, 400, f"conversation {number} reply {seen.turn}: {problem}")
        with self._lock:
            given = self._errors_given.get((number, seen.turn), 0)
            if given < len(reply.errors):
                self._errors_given[number, seen.turn] = given + 1
                return Turn(number, seen.turn, error=reply.errors[given])
            self._replies_given += 1
            serial = self._replies_given
        return Turn(number, seen.turn, reply=reply, usage=_usage(reply, seen), serial=serial)

    def _conversation_for(self, opening: str) -> int | None:
        for number, conversation in enumerate(self.script.conversations):
            match = (conversation.match,) if isinstance(conversation.match, str) else conversation.match
            if all(text in opening for text in match):
                return number
        return None

    def _failed(self, conversation: int | None, index: int | None, status: int, message: str) -> Turn:
        self.fail(message)
        return Turn(conversation, index, error=ErrorReply(status, message))


def _unmet(expect: Expect, seen: Transcript) -> str | None:
    checks = [("the request", expect.contains, seen.everything), ("the last message", expect.last_contains, seen.last),
              ("the latest tool results", expect.tool_result_contains, seen.tool_results)]
    for what, needles, haystack in checks:
        for needle in (needles,) if isinstance(needles, str) else needles:
            if haystack is None:
                return f"expected {what} to contain {needle!r}, but there is no tool result after the last " \
                       "assistant message"
            if needle not in haystack:
                return f"expected {what} to contain {needle!r}, but it was {describe(haystack, 300)}"
    return None


def _usage(reply: Reply, seen: Transcript) -> Usage:
    given = reply.usage or Usage()
    written = len(reply.text or "") + sum(len(c.name) + len(str(c.arguments)) for c in reply.tool_calls)
    estimate = max(1, len(seen.everything) // 4, given.cached_tokens + given.cache_creation_tokens)
    return dataclasses.replace(
        given,
        input_tokens=given.input_tokens if given.input_tokens is not None else estimate,
        output_tokens=given.output_tokens if given.output_tokens is not None else max(1, written // 4),
    )
