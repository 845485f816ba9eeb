"""Helpers for the gateway's tests: the scripted server as the upstream (with the time each request
reached it), requests in each API's shape, and answers read back without what differs per reply."""

from __future__ import annotations

import importlib.util
import json
import re
import threading
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

from swarmd.gateway.apis import Api, Counts
from swarmd.gateway.prices import PRICE_MAP
from swarmd.gateway.server import Gateway
from swarmd.testing import RecordedRequest, ScriptedModelServer

REAL_KEY, OWN_LOGIN = "sk-real-provider-key", "own-subscription-login"
ENV = {"UPSTREAM_KEY": REAL_KEY}
TEXT = "Hello from the upstream, in several pieces of text."
USAGE = {"input_tokens": 1000, "output_tokens": 50, "cached_tokens": 600, "cache_creation_tokens": 100}
SCRIPT = {"conversations": [
    {"match": "SLOW", "replies": [{"text": "late", "delay": 120}]},
    {"match": "BUSY", "replies": [{"text": "ok", "usage": USAGE, "errors": [{"status": 429, "retry_after": 1}]}]},
    {"replies": [{"text": TEXT, "tool_calls": [{"name": "bash", "arguments": {"command": "ls -la"}}], "usage": USAGE}]},
]}
APIS = [Api.CHAT, Api.RESPONSES, Api.MESSAGES]
PATHS = {Api.CHAT: "/v1/chat/completions", Api.RESPONSES: "/v1/responses", Api.MESSAGES: "/v1/messages"}
VOLATILE = {"id", "item_id", "created", "created_at"}  # differ from one reply to the next
WAIT_S = 60.0
LITELLM = importlib.util.find_spec("litellm")  # found, not imported: that takes seconds
assert LITELLM is not None and LITELLM.submodule_search_locations
LITELLM_PRICES = json.loads((Path(LITELLM.submodule_search_locations[0]) / PRICE_MAP).read_text(encoding="utf-8"))


class Upstream:
    """The scripted server, and the time.monotonic() at which each request reached it."""

    def __init__(self) -> None:
        self.arrived: list[float] = []
        self.changed = threading.Condition()
        self.server = ScriptedModelServer(SCRIPT, api_key=REAL_KEY, on_request=self._seen)

    def _seen(self, request: RecordedRequest) -> None:
        with self.changed:
            self.arrived.append(time.monotonic())
            self.changed.notify_all()

    def wait_for(self, count: int) -> None:
        with self.changed:
            assert self.changed.wait_for(lambda: len(self.arrived) >= count, WAIT_S)

    def last_headers(self) -> dict[str, str]:
        return self.server.requests[-1].headers


def request_body(api: Api, stream: bool = False, tag: str = "You are a worker.", include_usage: bool = False,
                 model: str = "test-model") -> dict[str, Any]:
    ask = "Fix the bug."
    if api is Api.RESPONSES:
        data: dict[str, Any] = {"model": model, "instructions": tag, "input": ask}
    elif api is Api.MESSAGES:
        data = {"model": model, "max_tokens": 100, "system": tag, "messages": [{"role": "user", "content": ask}]}
    else:
        data = {"model": model, "messages": [{"role": "system", "content": tag}, {"role": "user", "content": ask}]}
    if stream:
        data["stream"] = True
    if include_usage:
        data["stream_options"] = {"include_usage": True}
    return data


def send(base: str, api: Api, data: dict[str, Any], key: str, header: str | None = None) -> tuple[int, Any, bytes]:
    """POST to the API's path under `base`, with `key` in `header` (by default the one the API's clients use)."""
    header = header or ("x-api-key" if api is Api.MESSAGES else "authorization")
    headers = {"Content-Type": "application/json", header: key if header == "x-api-key" else f"Bearer {key}"}
    if api is Api.MESSAGES:
        headers["anthropic-version"] = "2023-06-01"
    request = urllib.request.Request(base + PATHS[api], json.dumps(data).encode(), headers, method="POST")
    try:
        with urllib.request.urlopen(request, timeout=WAIT_S) as answer:
            return answer.status, answer.headers, answer.read()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.headers, exc.read()


def scrub(value: Any) -> Any:
    if isinstance(value, dict):
        return {key: None if key in VOLATILE else scrub(item) for key, item in value.items()}
    if isinstance(value, list):
        return [scrub(item) for item in value]
    return value


def parsed(raw: bytes, stream: bool) -> Any:
    """A JSON answer, or a stream's events as (event name, data), without the fields that differ per reply."""
    if not stream:
        return scrub(json.loads(raw))
    events = []
    for block in re.split(rb"\r?\n\r?\n", raw):
        lines = block.splitlines()
        name = next((line[6:].strip().decode() for line in lines if line.startswith(b"event:")), None)
        data = b"\n".join(line[5:].strip() for line in lines if line.startswith(b"data:"))
        if data:
            events.append((name, data.decode() if data == b"[DONE]" else scrub(json.loads(data))))
    return events


def error_of(api: Api, raw: bytes) -> tuple[str, str]:
    """The type and message of an error answer, checked to be in the API's own shape."""
    data = json.loads(raw)
    if api is Api.MESSAGES:
        assert data["type"] == "error"
    else:
        assert set(data["error"]) == {"message", "type", "code", "param"}
    return data["error"]["type"], data["error"]["message"]


def metered(gateway: Gateway, input_tokens: int = 1000) -> Counts:
    """What attempt 1 of task t1 (cycle 1) spent: charged before the end of the answer reaches the client,
    so it is there once the client has read it all."""
    counts = gateway.spend.of_attempt("t1", 1, 1)
    assert counts is not None and counts.input_tokens >= input_tokens, f"not metered: {counts}"
    return counts
