"""The repository's `.swarm/config.yaml`: a typed model with documented defaults.

The commented template every `swarmd init` writes is `templates/config.yaml`; a test keeps the two equal.
"""

from __future__ import annotations

import shlex
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, Strict, model_validator

from swarmd import yamlio
from swarmd.errors import UsageError
from swarmd.layout import CONFIG_PATH, DEFAULT_BRANCH

# Strict: a bool or a float where a whole number belongs is refused (YAML reads `true` and `2.0` as such),
# and so is a bool or a string where a number of seconds belongs.
Count = Annotated[int, Strict(), Field(gt=0)]
Seconds = Annotated[float, Strict(), Field(gt=0, allow_inf_nan=False)]


def _split_command(value: object) -> object:
    """An agent command is an argv list; a string is split the way a shell would."""
    if isinstance(value, str):
        try:
            value = shlex.split(value)
        except ValueError as exc:
            raise ValueError(f"cannot split this command like a shell would: {exc}") from None
    if value == []:
        raise ValueError("the command is empty; give a program to run, or null for the default")
    return value


Command = Annotated[list[str] | None, BeforeValidator(_split_command)]


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    @model_validator(mode="before")
    @classmethod
    def _empty_means_defaults(cls, data: Any) -> Any:
        """A section left empty (`limits:` with every key below it commented out) takes its defaults."""
        return {} if data is None else data


class Style(StrEnum):
    MERGE = "merge"  # one landing commit per task, with the worker's branch as second parent
    REPLAY = "replay"  # the worker's commits replayed onto the tip: linear history


class Integration(_Section):
    branch: str = DEFAULT_BRANCH
    style: Style = Style.MERGE


class Limits(_Section):
    planners: Count = 2
    workers: Count = 4
    depth: Count = 3


Price = Annotated[float, Strict(), Field(ge=0, allow_inf_nan=False)]  # US dollars per million tokens


class Prices(_Section):
    """What a model costs, for models litellm cannot price (a local or private model)."""

    input: Price
    output: Price
    cached_input: Price | None = None  # input tokens read from the prompt cache; default: `input`


class Backend(StrEnum):
    """Which agent plays a role when `command` is null: swarmd's own, or a coding-agent CLI through its
    adapter (swarmd/backends/); every one of them reaches its model through the gateway."""

    BUILTIN = "builtin"
    CLAUDE_CODE = "claude-code"
    CODEX = "codex"
    AIDER = "aider"
    QWEN_CODE = "qwen-code"


def _env_entry(value: object) -> object:
    if isinstance(value, str):
        name = value.partition("=")[0]
        if not name or not all(c.isalnum() or c == "_" for c in name) or name[0].isdigit():
            raise ValueError(f"{value!r} is neither a variable's name nor NAME=value")
    return value


EnvEntry = Annotated[str, BeforeValidator(_env_entry)]


class Agent(_Section):
    command: Command = None  # None: the backend below, through swarmd's adapter for it
    backend: Backend = Backend.BUILTIN
    executable: str | None = Field(default=None, min_length=1)  # the backend's CLI; None: its usual name on PATH
    timeout: Seconds  # each role has its own default: see TIMEOUTS
    # What an agent's environment holds besides the contract's variables, PATH, HOME, LANG and the
    # gateway's address and token: a variable's name passes it on from swarmd's environment, NAME=value sets it.
    env: tuple[EnvEntry, ...] = ()
    own_login: bool = False  # the CLI logs in by itself (a subscription): its credentials pass through the gateway
    # The built-in agent's settings; a command of your own may read them too (SWARM_AGENT_SETTINGS).
    model: str | None = Field(default=None, min_length=1)  # a litellm model string, e.g. openai/gpt-4.1
    api_base: str | None = Field(default=None, min_length=1)  # for a local or OpenAI-compatible server
    api_key_env: str | None = Field(default=None, pattern=r"^[A-Za-z_][A-Za-z0-9_]*$")  # the variable's name
    temperature: Annotated[float, Strict(), Field(ge=0, le=2)] | None = None  # None: the provider's default
    max_tokens: Count = 8192  # per model reply
    max_steps: Count = 200  # model replies per attempt; past it the attempt fails
    context_window: Count | None = None  # tokens; None: what litellm knows of the model
    price: Prices | None = None  # None: litellm's price map
    # A 429, a 5xx, a timeout or a lost connection is retried this many times per model call, after
    # retry_delay seconds doubled each time (with jitter), or what the provider's Retry-After says.
    retries: Annotated[int, Strict(), Field(ge=0, le=20)] = 6
    retry_delay: Seconds = 2.0

    @model_validator(mode="after")
    def _room_for_a_reply(self) -> Agent:
        if self.context_window is not None and self.context_window <= self.max_tokens:
            raise ValueError(f"context_window ({self.context_window}) must be larger than max_tokens "
                             f"({self.max_tokens}), which it has to hold besides the conversation")
        return self

    def settings(self) -> dict[str, Any]:
        """What the agent is handed: never a key, nor where one is (the gateway holds it)."""
        return self.model_dump(mode="json", exclude={"command", "env", "api_key_env"})


TIMEOUTS = {"planner": 1800.0, "worker": 3600.0, "judge": 900.0}  # seconds per attempt, by role


class Agents(_Section):
    planner: Agent = Agent(timeout=TIMEOUTS["planner"])
    worker: Agent = Agent(timeout=TIMEOUTS["worker"])
    judge: Agent = Agent(timeout=TIMEOUTS["judge"])

    @model_validator(mode="before")
    @classmethod
    def _default_timeouts(cls, data: Any) -> Any:
        """A role given without `timeout`, or left empty, takes its role's default."""
        if not isinstance(data, dict):
            return {} if data is None else data
        filled = dict(data)
        for role, timeout in TIMEOUTS.items():
            if role in filled and (filled[role] is None or isinstance(filled[role], dict)):
                filled[role] = {"timeout": timeout, **(filled[role] or {})}
        return filled


Usd = Annotated[float, Strict(), Field(gt=0, allow_inf_nan=False)]


class Limit(_Section):
    max_usd: Usd | None = None
    max_tokens: Count | None = None  # input and output tokens together


class Budget(_Section):
    """Hard caps on what the model calls may spend, counted by the gateway: per task (all its attempts),
    per cycle, and per run (everything this swarm spent since `swarmd init`, across starts)."""

    task: Limit = Limit()
    cycle: Limit = Limit()
    run: Limit = Limit(max_usd=20.0)
    grace: Seconds = 60.0  # how long an agent refused a call for a spent budget has to hand off before it is stopped


class Pool(_Section):
    keep_ignored: bool = True


class Verify(_Section):
    command: Command = None


class Config(_Section):
    """The whole file. Every field has its default, so an empty file is a valid config."""

    integration: Integration = Field(default_factory=Integration)
    limits: Limits = Field(default_factory=Limits)
    agents: Agents = Field(default_factory=Agents)
    max_attempts: Count = 3
    pool: Pool = Field(default_factory=Pool)
    verify: Verify = Field(default_factory=Verify)
    budget: Budget = Field(default_factory=Budget)

    def pool_size(self, workers: int | None = None) -> int:
        """The most worktrees the pool may hold: every planner and worker at once (`workers` overrides
        the limit, as `swarmd start --max-workers` does), plus the judge and the verify check."""
        return self.limits.planners + (workers or self.limits.workers) + 2


def load_config(workdir: Path) -> Config:
    path = workdir / CONFIG_PATH
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        raise UsageError(f"{CONFIG_PATH}: not found in {workdir}; run `swarmd init` first") from None
    except OSError as exc:
        raise UsageError(f"{CONFIG_PATH}: could not read it: {exc.strerror}") from None
    data = yamlio.load(raw, CONFIG_PATH)
    return yamlio.parse(Config, {} if data is None else data, CONFIG_PATH)
