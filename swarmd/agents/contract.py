"""The agent contract seen from inside an agent (docs/agent-contract.md): the SWARM_* variables, the
prompt, the role's settings, and the result file. The daemon's side of it is `swarmd/daemon/runner.py`;
the two share the names defined here."""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from swarmd.files import write_atomic
from swarmd.secrets import SECRET_NAME

SETTINGS_VAR = "SWARM_AGENT_SETTINGS"  # the role's settings from the user's config, as JSON
GATEWAY_URL = "SWARM_GATEWAY_URL"  # the agent's base URL at swarmd's gateway: http://127.0.0.1:PORT/agent/TOKEN
GATEWAY_TOKEN = "SWARM_GATEWAY_TOKEN"  # its API key there; the real key stays with the gateway
CONFIG_EXIT = 78  # "my role is misconfigured" (sysexits' EX_CONFIG): the daemon pauses the role

# The contract's variables the commands an agent runs are left with: none of its files, nor its settings.
FOR_COMMANDS = frozenset({"SWARM_ROLE", "SWARM_TASK_ID", "SWARM_BASE", "SWARM_INTEGRATION_BRANCH"})


class ContractError(Exception):
    """The daemon did not hand the agent what the contract promises: the agent cannot run at all."""


@dataclass(frozen=True)
class Assignment:
    role: str
    task_id: str
    cycle: int
    attempt: int
    worktree: Path
    prompt: str
    result_file: Path
    log_dir: Path  # the run's folder, outside the worktree: the prompt, result and log live there
    settings: dict[str, Any]
    conflict: bool = False


def assignment(environ: Mapping[str, str], cwd: Path) -> Assignment:
    def need(name: str) -> str:
        value = environ.get(name)
        if not value:
            raise ContractError(f"{name} is not set; `swarmd agent` runs under the swarmd daemon, which sets it")
        return value

    prompt_file = Path(need("SWARM_PROMPT_FILE"))
    settings_file = Path(need(SETTINGS_VAR))
    try:
        prompt = prompt_file.read_text(encoding="utf-8")
        settings = json.loads(settings_file.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise ContractError(f"cannot read what the daemon handed over: {exc}") from None
    if not isinstance(settings, dict):
        raise ContractError(f"{settings_file}: not a JSON object")
    try:
        cycle, attempt = int(need("SWARM_CYCLE")), int(need("SWARM_ATTEMPT"))
    except ValueError as exc:
        raise ContractError(f"SWARM_CYCLE or SWARM_ATTEMPT is not a number: {exc}") from None
    return Assignment(
        role=need("SWARM_ROLE"), task_id=need("SWARM_TASK_ID"), cycle=cycle, attempt=attempt,
        worktree=cwd.resolve(), prompt=prompt, result_file=Path(need("SWARM_RESULT_FILE")),
        log_dir=prompt_file.parent, settings=settings, conflict=environ.get("SWARM_CONFLICT") == "1",
    )


def command_environment(environ: Mapping[str, str], secrets: tuple[str, ...] = ()) -> dict[str, str]:
    """The environment for commands an agent runs on a model's behalf: no SWARM_* a command does not
    need (the result file, the settings), nothing whose name says it is a secret, and no variable
    holding one of `secrets` (the API key's value, wherever else it is)."""
    values = {secret for secret in secrets if secret}
    return {
        name: value for name, value in environ.items()
        if (name in FOR_COMMANDS or not name.startswith("SWARM_"))
        and not SECRET_NAME.search(name) and value not in values
    }


def write_result(path: Path, result: Mapping[str, Any]) -> None:
    """The result file, written whole or not at all (the daemon reads it once the agent exited)."""
    write_atomic(path, yaml.safe_dump(dict(result), sort_keys=False, allow_unicode=True))
