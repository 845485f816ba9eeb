"""What an agent process is started as: the command that plays its role (an agent of the user's, the
built-in agent, or a CLI through swarmd's adapter for it) and the environment it gets, built from an
allowlist rather than the daemon's own, so no key of the user's reaches an agent unless they name it."""

from __future__ import annotations

import sys
from collections.abc import Mapping

from swarmd.config import Agent, Backend

# -P keeps the worktree (the agent's cwd) off sys.path, so a json.py or a swarmd/ in the repository
# cannot stand in for swarmd's own modules.
BUILTIN_AGENT = [sys.executable, "-P", "-m", "swarmd", "agent"]

# Passed on from swarmd's environment: what programs need to run at all, and nothing that holds a secret.
PASSED = frozenset({
    "PATH", "HOME", "USER", "LOGNAME", "SHELL", "LANG", "LANGUAGE", "TERM", "TZ", "TMPDIR",
    "XDG_CONFIG_HOME", "XDG_CACHE_HOME", "XDG_DATA_HOME", "XDG_STATE_HOME", "XDG_RUNTIME_DIR",
})


def command(agent: Agent) -> list[str]:
    if agent.command:
        return agent.command
    if agent.backend is Backend.BUILTIN:
        return BUILTIN_AGENT
    return [sys.executable, "-P", "-m", "swarmd.backends", agent.backend.value]


def environment(agent: Agent, environ: Mapping[str, str]) -> dict[str, str]:
    """The allowlist, then what `agents.<role>.env` names: a variable passed on, or NAME=value set.
    The contract's variables and the gateway's are added per run."""
    env = {name: value for name, value in environ.items() if name in PASSED or name.startswith("LC_")}
    for entry in agent.env:
        name, given, value = entry.partition("=")
        if given:
            env[name] = value
        elif name in environ:
            env[name] = environ[name]
    return env
