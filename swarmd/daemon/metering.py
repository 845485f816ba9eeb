"""The daemon's side of the gateway (ADR 0023): started and stopped with the daemon, an agent admitted
with a token of its own when it starts and let go when its exit is handled, what each attempt spent read
back for its record, and the budgets the loop must heed.

The gateway's address is recorded in `.git/swarm/gateway.json` while it runs."""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Mapping
from pathlib import Path

from swarmd.agents.contract import GATEWAY_TOKEN, GATEWAY_URL
from swarmd.config import Agent, Backend, Budget, Config
from swarmd.gateway.apis import Api
from swarmd.files import write_atomic
from swarmd.gateway.prices import Price
from swarmd.gateway.routes import Route
from swarmd.gateway.server import Gateway, GatewayFailed, Refused
from swarmd.gateway.spend import Budgets, Counts, Limit, Spend, task_key
from swarmd.tasks import ROOT, Role, Usage

ADDRESS = "gateway.json"


# The API each backend speaks: the gateway refuses its agents any other (and so any other provider's key).
SPEAKS = {Backend.CLAUDE_CODE: frozenset({Api.MESSAGES}), Backend.CODEX: frozenset({Api.RESPONSES}),
          Backend.AIDER: frozenset({Api.CHAT}), Backend.QWEN_CODE: frozenset({Api.CHAT})}


def route(agent: Agent) -> Route:
    """What the gateway needs of a role. A server of your own (`api_base` without a key) costs nothing
    unless its `price` says otherwise; the built-in agent speaks Anthropic's API to `anthropic/` models
    and OpenAI's chat to the rest; an agent of your own (`command`) any of the three."""
    price = agent.price
    if price is not None:
        charged: Price | None = Price.per_million(price.input, price.output, price.cached_input)
    else:
        charged = Price.per_million(0, 0) if agent.api_base and not agent.api_key_env else None
    if agent.command:
        apis = None
    elif agent.backend is Backend.BUILTIN:
        apis = frozenset({Api.MESSAGES if (agent.model or "").startswith(("anthropic/", "claude")) else Api.CHAT})
    else:
        apis = SPEAKS[agent.backend]
    return Route(model=agent.model, api_base=agent.api_base, api_key_env=agent.api_key_env, price=charged, apis=apis)


def budgets(budget: Budget) -> Budgets:
    return Budgets(**{scope: Limit(getattr(budget, scope).max_usd, getattr(budget, scope).max_tokens)
                      for scope in ("task", "cycle", "run")})


class Metering:
    def __init__(self, config: Config, swarm_dir: Path, on_event: Callable[[Refused | GatewayFailed], None],
                 environ: Mapping[str, str] = os.environ) -> None:
        self.swarm_dir = swarm_dir
        self.spend = Spend(swarm_dir, budgets(config.budget))
        routes = {role.value: route(getattr(config.agents, role.value)) for role in Role}
        self.gateway = Gateway(self.spend, routes, environ, on_event)

    def start(self) -> str:
        url = self.gateway.start()
        write_atomic(self.swarm_dir / ADDRESS, json.dumps({"url": url, "pid": os.getpid()}))
        return url

    def stop(self) -> None:
        (self.swarm_dir / ADDRESS).unlink(missing_ok=True)
        self.gateway.stop()

    def admit(self, role: Role, task_id: str, cycle: int, attempt: int) -> tuple[str, dict[str, str]]:
        """A token for one agent run, and the variables that point it at the gateway."""
        badge = self.gateway.admit(role.value, task_key(role.value, task_id, cycle, ROOT), cycle, attempt)
        return badge.token, {GATEWAY_URL: self.gateway.base_url(badge), GATEWAY_TOKEN: badge.token}

    def release(self, token: str) -> None:
        self.gateway.revoke(token)

    def spent(self, role: Role, task_id: str, cycle: int, attempt: int) -> Usage | None:
        """What the gateway metered for one attempt, or None if that agent made no call through it."""
        counts = self.spend.of_attempt(task_key(role.value, task_id, cycle, ROOT), cycle, attempt)
        return None if counts is None else usage(counts)

    def spent_by_task(self, role: Role, task_id: str, cycle: int) -> Usage | None:
        counts = self.spend.of_task(task_key(role.value, task_id, cycle, ROOT))
        return None if counts is None else usage(counts)


def usage(counts: Counts) -> Usage:
    return Usage.model_validate(counts.usage())

