"""Where a role's requests go: the upstream's base URL and the real key, from the role's config
(`api_base`, `api_key_env`, the provider in `model`) and the API the request speaks; and the price its
usage is charged at. A provider that speaks OpenAI's API at an address of its own is known here by its
base URL and the variable that holds its key, as litellm names them."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from swarmd.gateway.apis import Api
from swarmd.gateway.prices import Price, known_price


@dataclass(frozen=True)
class Provider:
    base: str  # the API's base URL, version included: requests' paths follow it without their `/v1`
    key_env: str


ANTHROPIC = Provider("https://api.anthropic.com/v1", "ANTHROPIC_API_KEY")
OPENAI = Provider("https://api.openai.com/v1", "OPENAI_API_KEY")
# OpenAI-compatible providers by litellm's name for them: the built-in agent reaches them as openai/NAME.
OPENAI_COMPATIBLE = {
    "openai": OPENAI,
    "deepseek": Provider("https://api.deepseek.com/v1", "DEEPSEEK_API_KEY"),
    "openrouter": Provider("https://openrouter.ai/api/v1", "OPENROUTER_API_KEY"),
    "xai": Provider("https://api.x.ai/v1", "XAI_API_KEY"),
    "groq": Provider("https://api.groq.com/openai/v1", "GROQ_API_KEY"),
    "mistral": Provider("https://api.mistral.ai/v1", "MISTRAL_API_KEY"),
    "together_ai": Provider("https://api.together.xyz/v1", "TOGETHERAI_API_KEY"),
    "fireworks_ai": Provider("https://api.fireworks.ai/inference/v1", "FIREWORKS_AI_API_KEY"),
    "gemini": Provider("https://generativelanguage.googleapis.com/v1beta/openai", "GEMINI_API_KEY"),
}
# Providers that need an api_base of the user's and speak OpenAI's API there.
NEEDS_BASE = frozenset({"hosted_vllm", "lm_studio", "openai_like", "llamafile", "vllm"})


def provider_name(model: str | None) -> str | None:
    return model.partition("/")[0] if model and "/" in model else None


def unmetered(model: str | None, api_base: str | None) -> str | None:
    """Why the gateway cannot carry a built-in agent's model, or None if it can."""
    provider = provider_name(model)
    if provider is None or provider == "anthropic" or provider in OPENAI_COMPATIBLE:
        return None
    if provider in NEEDS_BASE:
        return None if api_base else f"provider {provider!r} needs api_base, the address of your server"
    return (f"provider {provider!r} does not speak an API the gateway meters (OpenAI chat or Responses, "
            f"Anthropic messages); use anthropic/, openai/, one of {', '.join(sorted(OPENAI_COMPATIBLE))}, "
            f"or openai/NAME with api_base for an OpenAI-compatible server")


@dataclass(frozen=True)
class Route:
    """A role's settings, as the gateway needs them."""

    model: str | None = None
    api_base: str | None = None
    api_key_env: str | None = None
    price: Price | None = None  # the config's; None: litellm's price map
    apis: frozenset[Api] | None = None  # the APIs the role's agent speaks; None: any of the three


@dataclass(frozen=True)
class Upstream:
    base: str
    key: str | None = field(default=None, repr=False)  # None: send none (a local server, or the agent's own login)
    key_env: str | None = None  # where the key came from, for messages


def upstream(route: Route, api: Api, environ: Mapping[str, str], own_login: bool = False) -> Upstream | str:
    """Where a request of `api` from a role with `route` goes, or why it cannot (no key: the message
    says which variable to set). An agent that logs in by itself (`own_login`) needs no key of ours."""
    if route.api_base:
        base = route.api_base.rstrip("/")
        if api.anthropic and not base.endswith("/v1"):
            base += "/v1"  # litellm's anthropic api_base is the host; the API's paths are under /v1
        if not route.api_key_env:
            return Upstream(base)  # your own server: your provider key does not go there
        provider = Provider(base, route.api_key_env)
    else:
        named = OPENAI_COMPATIBLE.get(provider_name(route.model) or "openai", OPENAI)
        provider = ANTHROPIC if api.anthropic else named
        if route.api_key_env:
            provider = Provider(provider.base, route.api_key_env)
    key = environ.get(provider.key_env)
    if not key and own_login:
        return Upstream(provider.base, None, provider.key_env)
    if not key:
        return (f"swarmd: no key for {provider.base}: set {provider.key_env} in the environment `swarmd start` "
                f"runs in (or name another variable in agents.<role>.api_key_env)")
    return Upstream(provider.base, key, provider.key_env)


def price_for(route: Route, model: str | None) -> Price | None:
    """The config's price for the role, else litellm's for the model the request names (with the role's
    provider, then without), else for the role's model."""
    if route.price is not None:
        return route.price
    provider = provider_name(route.model)
    names = [f"{provider}/{model}" if provider and model else None, model, route.model]
    return next((price for name in names if name and (price := known_price(name)) is not None), None)
