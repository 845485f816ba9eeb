"""Reading a streamed answer as it passes: the server-sent events are cut at their blank lines and
relayed one by one as soon as each is whole, and the usage is read from the events that carry it
(`message_start` and `message_delta` for Anthropic, `response.completed` for Responses, the chunk with
`usage` for OpenAI chat). Only events that mention usage are parsed."""

from __future__ import annotations

import json
import re
from typing import Any

from swarmd.gateway.apis import Api, Counts, counts_of

_BOUNDARY = re.compile(rb"\r?\n\r?\n")
_NULL_USAGE = re.compile(rb',\s*"usage"\s*:\s*null|"usage"\s*:\s*null\s*,')
_RESPONSE_ENDS = (b"response.completed", b"response.incomplete", b"response.failed")


class StreamMeter:
    def __init__(self, api: Api, hide_usage: bool = False) -> None:
        self.api = api
        self.hide_usage = hide_usage  # the gateway asked for usage the client did not: keep it from the client
        self.pending = b""
        self.relayed = 0  # bytes passed on to the client
        self.counts: Counts | None = None
        self._anthropic = {"input_tokens": 0, "cache_read_input_tokens": 0, "cache_creation_input_tokens": 0,
                           "output_tokens": 0}

    def feed(self, chunk: bytes) -> bytes:
        """The whole events in what has come so far, to relay now; a partial one waits for the rest."""
        data = self.pending + chunk
        out: list[bytes] = []
        start = 0
        for match in _BOUNDARY.finditer(data):
            event = data[start:match.end()]
            start = match.end()
            out.append(self._event(event))
        self.pending = data[start:]
        whole = b"".join(out)
        self.relayed += len(whole)
        return whole

    def estimate(self, request: bytes) -> Counts:
        """For an answer cut short before it said its usage: the prompt at 4 bytes a token, and every byte
        relayed as a token of output (an overcount, as a cap must err)."""
        return Counts(len(request) // 4, self.relayed + len(self.pending), estimated=True)

    def close(self) -> bytes:
        """What is left when the stream ends (an event with no blank line after it), relayed as it is."""
        rest, self.pending = self.pending, b""
        return self._event(rest) if rest.strip() else rest

    def _event(self, event: bytes) -> bytes:
        if b"usage" not in event and not (self.api is Api.RESPONSES and any(end in event for end in _RESPONSE_ENDS)):
            return event
        if self.hide_usage and event.count(b'"usage"') == len(_NULL_USAGE.findall(event)):
            return _NULL_USAGE.sub(b"", event)  # a chunk with `"usage": null` only, which the client did not ask for
        payload = _data(event)
        if not isinstance(payload, dict):
            return event
        if self.api is Api.MESSAGES:
            self._anthropic_usage(payload)
        elif self.api is Api.RESPONSES:
            response = payload.get("response")
            if payload.get("type") in ("response.completed", "response.incomplete", "response.failed") \
                    and isinstance(response, dict):
                self.counts = counts_of(self.api, response.get("usage")) or self.counts
        elif self.api is Api.CHAT:
            usage = payload.get("usage")
            if isinstance(usage, dict):
                self.counts = counts_of(self.api, usage)
                if self.hide_usage and not payload.get("choices"):
                    return b""  # the chunk the gateway asked for: the client did not
                if self.hide_usage:  # a provider that puts it on the last chunk with a choice: strip it there
                    del payload["usage"]
                    return b"data: " + json.dumps(payload, ensure_ascii=False).encode() + b"\n\n"
            if self.hide_usage:
                return _NULL_USAGE.sub(b"", event)
        return event

    def _anthropic_usage(self, payload: dict[str, Any]) -> None:
        kind = payload.get("type")
        message = payload.get("message")
        usage = (message.get("usage") if isinstance(message, dict) else None) if kind == "message_start" \
            else payload.get("usage")
        if kind not in ("message_start", "message_delta") or not isinstance(usage, dict):
            return
        for name in self._anthropic:  # message_delta's counts are the totals so far; the latest wins
            value = usage.get(name)
            if isinstance(value, int) and not isinstance(value, bool) and value >= 0:
                self._anthropic[name] = value
        self.counts = counts_of(Api.MESSAGES, self._anthropic)


def _data(event: bytes) -> Any:
    lines = [line[5:].lstrip() for line in event.splitlines() if line.startswith(b"data:")]
    if not lines:
        return None
    try:
        return json.loads(b"\n".join(lines))
    except ValueError:
        return None
