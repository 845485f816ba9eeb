"""The model, through litellm: the only module that imports it, and only when an agent is made (the
import takes seconds). Everything litellm raises becomes one of three errors the loop understands:
`Retryable` (wait and ask again), `Misconfigured` (the role cannot run as configured) and `ModelError`
(this attempt cannot go on)."""

from __future__ import annotations

import json
import logging
import os
import socket
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

from swarmd.agents.contract import GATEWAY_TOKEN, GATEWAY_URL

log = logging.getLogger(__name__)

# Without this litellm downloads its price map at import, which takes 7-15 s offline (../shared/NOTES.md).
os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")

DEFAULT_WINDOW = 32_000  # tokens, for a model litellm does not know and `context_window` does not give
REQUEST_TIMEOUT_S = 600.0  # one model call; the role's `timeout` bounds the whole run


class ModelError(Exception):
    """The model cannot answer this attempt (a bad request, a window too small): the attempt fails."""


class Retryable(ModelError):
    def __init__(self, message: str, retry_after: float | None = None, reached: bool = True) -> None:
        super().__init__(message)
        self.retry_after = retry_after  # seconds the provider asked for, if it did
        self.reached = reached  # False: the server was never reached (connection refused, no such host)


class Misconfigured(ModelError):
    """A wrong key, an unknown model, a bad `api_base`: no attempt of this role can succeed."""


class Refused(ModelError):
    """The provider refused the request itself (a 400 or 422, or litellm refusing a parameter): on a run's
    first call that is the settings' fault (max_tokens, temperature), later the conversation's."""


class BudgetSpent(ModelError):
    """The gateway refused the call: a budget of this task, cycle or run is spent. The agent stops and
    hands off what it has."""


class TooLong(ModelError):
    """The provider says the conversation is past the model's context window."""


@dataclass(frozen=True)
class Settings:
    """A role's settings (docs/agent-contract.md, "The role's settings"), with the key looked up."""

    model: str
    call_model: str | None = None  # the model as litellm is asked for it through the gateway; None: `model`
    api_base: str | None = None
    api_key: str | None = field(default=None, repr=False)
    api_key_env: str | None = None
    temperature: float | None = None
    max_tokens: int = 8192
    max_steps: int = 200
    context_window: int | None = None
    price: dict[str, float | None] | None = None  # USD per million tokens: input, output, cached_input
    retries: int = 6
    retry_delay: float = 2.0
    depth: int = 3

    @classmethod
    def of(cls, settings: dict[str, Any], environ: dict[str, str] | os._Environ[str]) -> Settings:
        if not settings.get("model"):
            raise Misconfigured("no model is set for this role: set agents.<role>.model in .swarm/config.yaml")
        key_env = settings.get("api_key_env")
        key = environ.get(key_env) if key_env else None
        if key_env and not key:
            raise Misconfigured(f"the variable {key_env} (agents.<role>.api_key_env) is not set")
        known = {name for name in cls.__dataclass_fields__ if name not in ("api_key", "api_base", "call_model")}
        given = {k: v for k, v in settings.items() if k in known and v is not None}
        url, token = environ.get(GATEWAY_URL), environ.get(GATEWAY_TOKEN)
        if url and token:  # every call goes through swarmd's gateway, which holds the real key
            return cls(**given, **through_gateway(settings["model"], url), api_key=token)
        return cls(**given, api_base=settings.get("api_base"), api_key=key)


def through_gateway(model: str, url: str) -> dict[str, str]:
    """How litellm reaches `model` through the gateway at `url`: Anthropic's models by Anthropic's API,
    every other provider's by OpenAI's (the gateway knows where each provider's server is)."""
    provider = model.partition("/")[0] if "/" in model else ("anthropic" if model.startswith("claude") else "openai")
    name = model.partition("/")[2] if "/" in model else model
    if provider == "anthropic":
        return {"api_base": url, "call_model": f"anthropic/{name}"}
    return {"api_base": f"{url}/v1", "call_model": f"openai/{name}"}


@dataclass(frozen=True)
class ToolCall:
    id: str
    name: str
    arguments: str  # JSON text, as the model wrote it (it may be malformed: the tool says so)


@dataclass
class Usage:
    input_tokens: int = 0
    output_tokens: int = 0
    cached_tokens: int = 0  # of the input tokens, those read from the provider's prompt cache
    cost_usd: float | None = None  # None: no call could be priced (the tokens are still counted)

    def add(self, other: Usage) -> None:
        self.input_tokens += other.input_tokens
        self.output_tokens += other.output_tokens
        self.cached_tokens += other.cached_tokens
        if other.cost_usd is not None:
            self.cost_usd = (self.cost_usd or 0.0) + other.cost_usd

    def contract(self) -> dict[str, Any]:
        """The contract's `usage` (tasks.Usage)."""
        cost = None if self.cost_usd is None else round(self.cost_usd, 6)
        return {"input_tokens": self.input_tokens, "output_tokens": self.output_tokens,
                "cached_tokens": self.cached_tokens, "cost_usd": cost}


@dataclass(frozen=True)
class Reply:
    message: dict[str, Any]  # the assistant message, as it goes back into the conversation
    text: str
    tool_calls: list[ToolCall]
    usage: Usage
    truncated: bool = False  # the reply hit max_tokens


class Model:
    def __init__(self, settings: Settings) -> None:
        import litellm  # here, not at the top: only the agent process pays for it

        litellm.suppress_debug_info = True
        litellm.disable_hf_tokenizer_download = True  # token counts of llama & co. must not go online
        self.litellm = litellm
        self.settings = settings
        self.provider = settings.model.partition("/")[0]
        self.caches = self.provider == "anthropic"  # OpenAI caches by itself; Anthropic needs cache_control

    def window(self) -> int:
        """The most tokens of input the model takes: `context_window`, else what litellm knows."""
        if self.settings.context_window:
            return self.settings.context_window
        try:
            info = self.litellm.get_model_info(self.settings.model)
        except Exception:  # an unknown model: litellm raises its own several kinds here
            log.debug("litellm knows no window for %s", self.settings.model, exc_info=True)
            return DEFAULT_WINDOW
        return int(info.get("max_input_tokens") or info.get("max_tokens") or DEFAULT_WINDOW)

    def count(self, messages: list[dict[str, Any]], tools: list[dict[str, Any]]) -> int:
        return int(self.litellm.token_counter(model=self.settings.model, messages=messages, tools=tools))

    def query(self, messages: list[dict[str, Any]], tools: list[dict[str, Any]]) -> Reply:
        s = self.settings
        kwargs: dict[str, Any] = {
            "model": s.call_model or s.model, "messages": self._cached(messages), "tools": tools, "max_tokens": s.max_tokens,
            "timeout": REQUEST_TIMEOUT_S, "max_retries": 0,  # the loop retries, with backoff (NOTES.md)
        }
        if s.api_base:
            kwargs["api_base"] = s.api_base
        if s.api_key:
            kwargs["api_key"] = s.api_key
        elif s.api_base:  # never the provider's usual key to a server of the user's: they name it if it wants one
            kwargs["api_key"] = "no-key"  # (and the openai client insists on some key)
        if s.temperature is not None:
            kwargs["temperature"] = s.temperature
        try:
            response = self.litellm.completion(**kwargs)
        except Exception as exc:
            raise self._classify(exc) from exc
        if not getattr(response, "choices", None):
            raise Retryable("the provider answered with no reply in it")
        return self._reply(response)

    def _cached(self, messages: list[dict[str, Any]]) -> list[dict[str, Any]]:
        """Anthropic's prompt cache: a breakpoint on the system prompt and on the newest message, so each
        step reads the conversation so far from the cache instead of paying for it again."""
        if not self.caches:
            return messages
        marked = list(messages)
        for index in {0, len(marked) - 1}:
            message = marked[index]
            if isinstance(message.get("content"), str) and message["content"]:
                marked[index] = {**message, "content": [
                    {"type": "text", "text": message["content"], "cache_control": {"type": "ephemeral"}}]}
        return marked

    def _classify(self, exc: Exception) -> ModelError:
        lt = self.litellm
        status = getattr(exc, "status_code", None)
        text = f"{type(exc).__name__}: {_first_line(str(exc))}"
        if "swarmd: budget spent" in str(exc):  # the gateway's own refusal, not a provider's 402
            return BudgetSpent(_gateway_message(str(exc)))
        if status == 402:  # the provider's: no credit left on the account, which no retry changes
            return Misconfigured(f"the provider refused payment ({text}); add credit to the account of "
                                 "the key, or use another")
        if "upstream_unreachable" in str(exc):  # the gateway could not reach the provider
            return Retryable(text, reached=False)
        if isinstance(exc, (lt.AuthenticationError, lt.PermissionDeniedError)) or status in (401, 403) or any(
                words in str(exc) for words in ("Missing credentials", "api_key client option must be set")):
            return Misconfigured(f"the provider refused the key ({text}); check agents.<role>.api_key_env")
        if isinstance(exc, lt.NotFoundError) or status == 404:
            return Misconfigured(f"the model {self.settings.model!r} or the api_base "
                                 f"{shown_url(self.settings.api_base)} was not found ({text})")
        if isinstance(exc, lt.ContextWindowExceededError):
            return TooLong(text)
        if isinstance(exc, lt.RateLimitError) or status == 429:
            return Retryable(text, _retry_after(exc))
        if _unreached(exc):
            return Retryable(text, reached=False)
        if isinstance(exc, (lt.Timeout, lt.APIConnectionError, lt.InternalServerError, lt.ServiceUnavailableError,
                            lt.BadGatewayError)) or (status or 0) >= 500:
            return Retryable(text, _retry_after(exc))
        if isinstance(exc, lt.BadRequestError) and "LLM Provider NOT provided" in str(exc):
            return Misconfigured(f"litellm does not know the model {self.settings.model!r}: give it as "
                                 f"provider/name, e.g. openai/gpt-4.1 or anthropic/claude-sonnet-4-5")
        if isinstance(exc, (lt.BadRequestError, lt.UnsupportedParamsError, lt.UnprocessableEntityError)) or status in (400, 422):
            return Refused(text)
        return ModelError(text)

    def _reply(self, response: Any) -> Reply:
        choice = response.choices[0]
        message = choice.message
        calls = [ToolCall(id=c.id or f"call_{i}", name=c.function.name or "", arguments=c.function.arguments or "")
                 for i, c in enumerate(message.tool_calls or [])]
        text = message.content if isinstance(message.content, str) else ""
        back: dict[str, Any] = {"role": "assistant", "content": text}
        if calls:
            back["tool_calls"] = [{"id": c.id, "type": "function", "function": {"name": c.name, "arguments": _as_sent(c)}}
                                  for c in calls]
        return Reply(back, text, calls, self._usage(response), truncated=choice.finish_reason == "length")

    def _usage(self, response: Any) -> Usage:
        raw = getattr(response, "usage", None)
        prompt = int(getattr(raw, "prompt_tokens", 0) or 0)
        output = int(getattr(raw, "completion_tokens", 0) or 0)
        details = getattr(raw, "prompt_tokens_details", None)
        cached = int(getattr(details, "cached_tokens", 0) or getattr(raw, "cache_read_input_tokens", 0) or 0)
        usage = Usage(prompt, output, cached, cost_usd=None)
        usage.cost_usd = self._cost(response, usage)
        return usage

    def _cost(self, response: Any, usage: Usage) -> float | None:
        """The configured `price`, else litellm's price map; None for a model neither can price."""
        price = self.settings.price
        if price:
            cached_price = price.get("cached_input")
            cached_price = price["input"] if cached_price is None else cached_price
            fresh = usage.input_tokens - usage.cached_tokens
            return (fresh * price["input"] + usage.cached_tokens * cached_price
                    + usage.output_tokens * price["output"]) / 1e6
        hidden = getattr(response, "_hidden_params", None) or {}
        if hidden.get("response_cost") is not None:
            return float(hidden["response_cost"])
        try:
            return float(self.litellm.completion_cost(completion_response=response, custom_llm_provider=self.provider))
        except Exception:  # ModelNotMappedError and kin: the tokens are still counted
            log.debug("litellm cannot price %s", self.settings.model, exc_info=True)
            return None


def _as_sent(call: ToolCall) -> str:
    """The arguments to send back in the conversation: as the model wrote them if they are a JSON object,
    else wrapped in one (Anthropic's API takes only objects: litellm refuses anything else, and the next
    request would fail for a mistake the tool's answer already told the model about)."""
    try:
        if isinstance(json.loads(call.arguments), dict):
            return call.arguments
    except (ValueError, RecursionError):
        pass
    return json.dumps({"unparsed_arguments": call.arguments})


def shown_url(url: str | None) -> str:
    """An address as it may be printed (and committed in a reason): without a user, password or query."""
    if not url:
        return "(the provider's default)"
    parts = urlsplit(url)
    if not parts.scheme or not parts.hostname:
        return "(an address that is not a URL)"
    try:
        port = f":{parts.port}" if parts.port else ""
    except ValueError:  # a port that is not a number
        return "(an address that is not a URL)"
    return f"{parts.scheme}://{parts.hostname}{port}{parts.path}"


def _gateway_message(text: str) -> str:
    """The gateway's own words (`swarmd: budget spent: ...`) out of what litellm made of them."""
    start = text.find("swarmd: ")
    return _first_line(text[start:] if start >= 0 else text).rstrip('"}] ')


def _first_line(text: str) -> str:
    return (text.strip().splitlines() or [""])[0][:300]


def _retry_after(exc: Exception) -> float | None:
    """The provider's `Retry-After` (seconds; an HTTP date is left to the backoff)."""
    for source in (getattr(exc, "litellm_response_headers", None), getattr(getattr(exc, "response", None), "headers", None)):
        try:
            value = source.get("retry-after") if source is not None else None
        except (AttributeError, TypeError):  # headers of some other shape
            value = None
        if value is not None:
            try:
                return max(0.0, float(value))
            except ValueError:
                return None
    return None


def _unreached(exc: BaseException) -> bool:
    """A connection that never reached a server (refused, no such host), wherever litellm wrapped it:
    it reports both as a 500 "Connection error"."""
    seen = 0
    cause: BaseException | None = exc
    while cause is not None and seen < 20:
        if isinstance(cause, (ConnectionRefusedError, socket.gaierror)) or type(cause).__name__ == "ConnectError":
            return True
        cause, seen = cause.__cause__ or cause.__context__, seen + 1
    return False
