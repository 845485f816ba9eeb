"""The three APIs the gateway speaks, told apart by the request's path: OpenAI chat completions, OpenAI
Responses and Anthropic messages; the usage each reports, in a JSON body or in a stream's events; and an
error answered in each one's own shape, so every client shows the gateway's message as it would the
provider's."""

from __future__ import annotations

import json
from dataclasses import dataclass
from enum import StrEnum
from typing import Any


class Api(StrEnum):
    CHAT = "chat"  # POST /v1/chat/completions
    RESPONSES = "responses"  # POST /v1/responses
    MESSAGES = "messages"  # POST /v1/messages (and /v1/messages/count_tokens, which reports no usage)
    OTHER = "other"  # anything else (a model list, say): relayed, nothing to meter

    @property
    def anthropic(self) -> bool:
        return self is Api.MESSAGES


def api_of(method: str, path: str) -> Api | None:
    """The API a request speaks, by its path (after the gateway's own `/agent/TOKEN` prefix); None for
    any other call (a batch, an embedding, the legacy completions, a Responses poll), which the gateway
    refuses: it could not meter it. Listing the models is let through (`OTHER`): it costs nothing."""
    path = path.rstrip("/")
    if method == "POST" and path.endswith("/chat/completions"):
        return Api.CHAT
    if method == "POST" and path.endswith("/responses"):
        return Api.RESPONSES
    if method == "POST" and (path.endswith("/messages") or path.endswith("/messages/count_tokens")):
        return Api.MESSAGES
    if method == "GET" and (path.endswith("/models") or "/models/" in path):
        return Api.OTHER
    return None


@dataclass
class Counts:
    """What one or many answers used: `input_tokens` is the whole prompt, the cached part included
    (`cached_tokens` read from the prompt cache, `cache_write_tokens` written to it), as tasks.Usage counts."""

    input_tokens: int = 0
    output_tokens: int = 0
    cached_tokens: int = 0
    cache_write_tokens: int = 0
    cost_usd: float | None = None  # None: no answer could be priced
    unpriced_tokens: int = 0  # of the tokens, those of answers nobody could price
    estimated: bool = False  # the answer was cut short before it said its usage: counted from its bytes

    @property
    def tokens(self) -> int:
        return self.input_tokens + self.output_tokens

    def add(self, other: Counts) -> None:
        self.input_tokens += other.input_tokens
        self.output_tokens += other.output_tokens
        self.cached_tokens += other.cached_tokens
        self.cache_write_tokens += other.cache_write_tokens
        self.unpriced_tokens += other.tokens if other.cost_usd is None else other.unpriced_tokens
        if other.cost_usd is not None:
            self.cost_usd = (self.cost_usd or 0.0) + other.cost_usd

    def plus(self, other: Counts) -> Counts:
        total = Counts(**vars(self))
        total.add(other)
        return total

    def negated(self) -> Counts:
        return Counts(-self.input_tokens, -self.output_tokens, -self.cached_tokens, -self.cache_write_tokens,
                      None if self.cost_usd is None else -self.cost_usd, -self.unpriced_tokens)

    def usage(self) -> dict[str, Any]:
        """As the contract's `usage` (tasks.Usage)."""
        return {"input_tokens": self.input_tokens, "output_tokens": self.output_tokens,
                "cached_tokens": self.cached_tokens,
                "cost_usd": None if self.cost_usd is None else round(self.cost_usd, 6)}


def _int(value: Any) -> int:
    return value if isinstance(value, int) and not isinstance(value, bool) and value > 0 else 0


def counts_of(api: Api, usage: Any) -> Counts | None:
    """The counts in a `usage` object as `api` reports it, or None if it is not one."""
    if not isinstance(usage, dict):
        return None
    if api is Api.MESSAGES:  # input_tokens leaves out what was read from and written to the cache
        cached, written = _int(usage.get("cache_read_input_tokens")), _int(usage.get("cache_creation_input_tokens"))
        return Counts(_int(usage.get("input_tokens")) + cached + written, _int(usage.get("output_tokens")), cached, written)
    if api is Api.RESPONSES:
        details = usage.get("input_tokens_details")
        cached = _int(details.get("cached_tokens")) if isinstance(details, dict) else 0
        return Counts(_int(usage.get("input_tokens")), _int(usage.get("output_tokens")), cached)
    details = usage.get("prompt_tokens_details")
    cached = _int(details.get("cached_tokens")) if isinstance(details, dict) else 0
    return Counts(_int(usage.get("prompt_tokens")), _int(usage.get("completion_tokens")), cached)


def body_counts(api: Api, body: bytes) -> Counts | None:
    """The usage in a whole (not streamed) answer."""
    if api is Api.OTHER or b'"usage"' not in body:
        return None
    try:
        data = json.loads(body)
    except ValueError:
        return None
    return counts_of(api, data.get("usage")) if isinstance(data, dict) else None


@dataclass(frozen=True)
class Request:
    """A request as it goes upstream, read once: its body (OpenAI chat streams asked for their usage),
    the model it names, and whether the client must not see the usage the gateway asked for."""

    body: bytes
    model: str | None = None
    hide_usage: bool = False
    background: bool = False  # a Responses request run in the background and polled: not meterable


_INCLUDE_USAGE = b',"stream_options":{"include_usage":true}}'


def prepare(api: Api, body: bytes) -> Request:
    """An OpenAI chat request that streams without `stream_options.include_usage` gets no usage: the
    gateway asks for it, splicing the option in rather than writing the body anew where it can."""
    try:
        data = json.loads(body) if body else None
    except ValueError:
        return Request(body)
    if not isinstance(data, dict):
        return Request(body)
    model = data.get("model") if isinstance(data.get("model"), str) and data.get("model") else None
    if api is Api.RESPONSES and data.get("background") is True:
        return Request(body, model, background=True)
    if api is not Api.CHAT or data.get("stream") is not True:
        return Request(body, model)
    options = data.get("stream_options")
    if isinstance(options, dict) and options.get("include_usage") is True:
        return Request(body, model)
    trimmed = body.rstrip()
    if "stream_options" not in data and trimmed.endswith(b"}"):
        return Request(trimmed[:-1] + _INCLUDE_USAGE, model, hide_usage=True)
    data["stream_options"] = {**(options if isinstance(options, dict) else {}), "include_usage": True}
    return Request(json.dumps(data, ensure_ascii=False).encode(), model, hide_usage=True)


def error_body(api: Api, kind: str, message: str) -> bytes:
    """An error as the API would send it: its type is `kind` (e.g. budget_spent, authentication_error)."""
    if api.anthropic:
        return json.dumps({"type": "error", "error": {"type": kind, "message": message}}).encode()
    return json.dumps({"error": {"message": message, "type": kind, "code": kind, "param": None}}).encode()
