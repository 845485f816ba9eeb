"""The repository's `.swarm/config.yaml`: a typed model with documented defaults.

The commented template every `swarmd init` writes is `templates/config.yaml`; a test keeps the two equal.
"""

from __future__ import annotations

import shlex
from enum import StrEnum
from pathlib import Path
from typing import Annotated

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, PositiveFloat, PositiveInt

from swarmd import yamlio
from swarmd.errors import UsageError
from swarmd.layout import CONFIG_PATH, DEFAULT_BRANCH



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


class Style(StrEnum):
    MERGE = "merge"  # one landing commit per task, with the worker's branch as second parent
    REPLAY = "replay"  # the worker's commits replayed onto the tip: linear history


class Integration(_Section):
    branch: str = DEFAULT_BRANCH
    style: Style = Style.MERGE


class Limits(_Section):
    planners: PositiveInt = 2
    workers: PositiveInt = 4
    depth: PositiveInt = 3


class Agent(_Section):
    command: Command = None  # None: the built-in LLM agent
    timeout: PositiveFloat


class Agents(_Section):
    planner: Agent = Agent(timeout=1800)
    worker: Agent = Agent(timeout=3600)
    judge: Agent = Agent(timeout=900)


class Pool(_Section):
    keep_ignored: bool = True


class Verify(_Section):
    command: Command = None


class Config(_Section):
    integration: Integration = Field(default_factory=Integration)
    limits: Limits = Field(default_factory=Limits)
    agents: Agents = Field(default_factory=Agents)
    max_attempts: PositiveInt = 3
    pool: Pool = Field(default_factory=Pool)
    verify: Verify = Field(default_factory=Verify)

    def pool_size(self, workers: int | None = None) -> int:
        """The most worktrees the pool may hold: every planner and worker at once (`workers` overrides
        the limit, as `swarmd start --max-workers` does), plus the judge and the verify check."""
        return self.limits.planners + (workers or self.limits.workers) + 2


def load_config(workdir: Path) -> Config:
    path = workdir / CONFIG_PATH
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise UsageError(f"{CONFIG_PATH}: not found in {workdir}; run `swarmd init` first") from None
    data = yamlio.load(text, CONFIG_PATH)
    return yamlio.parse(Config, {} if data is None else data, CONFIG_PATH)
