"""Everything `swarmd start` would refuse, found without writing anything: `swarmd check` reports the
same list, and a start that is refused leaves no commit, no pool slot and no record behind."""

from __future__ import annotations

import importlib
import os
import shutil
from dataclasses import dataclass
from pathlib import Path

from swarmd import prompts, store, yamlio
from swarmd.backends import BACKENDS
from swarmd.config import Agent, Backend, Config
from swarmd.daemon import tipfile
from swarmd.daemon.metering import budgets, route
from swarmd.gateway.apis import Api
from swarmd.gateway.routes import price_for, unmetered, upstream
from swarmd.gateway.spend import Spend
from swarmd.errors import UsageError, ValidationError
from swarmd.git.repo import Repo
from swarmd.layout import CONFIG_PATH, GOAL_PATH
from swarmd.tasks import Role


@dataclass(frozen=True)
class Findings:
    problems: list[str]
    tree: store.TaskTree | None = None  # the tree at the tip, read once for the checks and for `check`'s summary
    cycles: int = 0  # cycle records at the tip


def problems(repo: Repo, config: Config) -> list[str]:
    return inspect(repo, config).problems


def inspect(repo: Repo, config: Config) -> Findings:
    branch = config.integration.branch
    found = _commands(config) + _gateway(config)
    if why := Spend(repo.swarm_dir, budgets(config.budget)).run_spent():
        found.append(f"{CONFIG_PATH}: field `budget.run`: the run's budget is spent ({why}); raise it to go on")
    if any(getattr(config.agents, role.value).command is None for role in Role):
        try:  # a broken override of the built-in agent's system prompt would fail every one of its runs
            prompts.render("agent-system", repo.workdir, {"role": "worker", "task_id": "1", "tools": ["finish"]})
        except UsageError as exc:
            found.append(str(exc))
    goal = repo.workdir / GOAL_PATH
    if not goal.is_file():
        found.append(f"{GOAL_PATH}: not found in {repo.workdir}; write the goal there (`swarmd init` makes one)")
    else:
        try:
            yamlio.decode(goal.read_bytes(), GOAL_PATH)
        except ValidationError as exc:
            found.extend(exc.problems)
    tip = repo.branch_tip(branch)
    if tip is None:
        return Findings([*found, f"integration branch {branch!r} does not exist; run `swarmd init` to create it"])
    checked_out = repo.checked_out_branches()
    # In a pooled worktree it is an agent's doing, which the start's repair of the pool undoes.
    if branch in checked_out and (repo.swarm_dir / "pool").resolve() not in checked_out[branch].resolve().parents:
        found.append(f"the integration branch {branch!r} is checked out in {checked_out[branch]}; landings would "
                     "move it under that checkout. Switch that worktree to another branch")
    written = tipfile.last_written(repo.swarm_dir, branch)
    if problem := tipfile.foreign_move(repo, branch, tip, written, starting=True):
        found.append(problem)
    tree = store.read_tree(repo, tip, config.limits.depth)
    cycles, cycle_problems = store.read_cycles(repo, tip)
    return Findings(found + tree.problems + cycle_problems, tree, len(cycles))


def _commands(config: Config) -> list[str]:
    found = []
    for role in Role:
        command = getattr(config.agents, role.value).command
        field = f"{CONFIG_PATH}: field `agents.{role.value}.command`"
        if not command:
            found.extend(_builtin_agent(role, getattr(config.agents, role.value)))
            found.extend(_backend(role, getattr(config.agents, role.value)))
        elif problem := _not_runnable(command[0]):
            found.append(f"{field}: {problem}")
    if config.verify.command and (problem := _not_runnable(config.verify.command[0])):
        found.append(f"{CONFIG_PATH}: field `verify.command`: {problem}")
    return found


def _builtin_agent(role: Role, agent: Agent) -> list[str]:
    """A role the built-in agent plays needs a model the gateway can carry."""
    field = f"{CONFIG_PATH}: field `agents.{role.value}"
    if agent.backend is not Backend.BUILTIN:
        return []
    if agent.model is None:
        return [f"{field}.model`: not set; the built-in agent needs a litellm model such as "
                f"anthropic/claude-sonnet-4-5 (`swarmd init --model` sets every role), or set "
                f"agents.{role.value}.backend or .command (docs/agent-contract.md)"]
    if why := unmetered(agent.model, agent.api_base):
        return [f"{field}.model`: {why}"]
    return []


def _backend(role: Role, agent: Agent) -> list[str]:
    """A role a CLI plays needs the CLI."""
    if agent.backend is Backend.BUILTIN:
        return []
    adapter = importlib.import_module(f"swarmd.backends.{BACKENDS[agent.backend.value]}")
    program = os.path.expanduser(agent.executable) if agent.executable else adapter.COMMAND
    found = []
    if problem := _not_runnable(program):
        found.append(f"{CONFIG_PATH}: field `agents.{role.value}.executable`: {problem}; install {adapter.TITLE} with "
                     f"`{adapter.INSTALL}` (docs/backends.md)")
    if agent.backend in (Backend.AIDER, Backend.QWEN_CODE) and not agent.model:
        found.append(f"{CONFIG_PATH}: field `agents.{role.value}.model`: not set; {adapter.TITLE} needs one, e.g. "
                     + ("openai/gpt-4.1" if agent.backend is Backend.AIDER else "openrouter/qwen/qwen3-coder"))
    return found


def _gateway(config: Config) -> list[str]:
    """What the gateway needs of each role: the key for the API it speaks (unless the agent logs in by
    itself), a price where a budget is in dollars, and no key in what `env` hands the agent."""
    found = []
    in_usd = any(getattr(config.budget, scope).max_usd for scope in ("task", "cycle", "run"))
    for role in Role:
        agent: Agent = getattr(config.agents, role.value)
        field = f"{CONFIG_PATH}: field `agents.{role.value}"
        api = min(route(agent).apis or {Api.CHAT})  # the one API each backend speaks (the key it needs)
        target = upstream(route(agent), api, os.environ)
        plays = agent.command is None and (agent.model or agent.backend is not Backend.BUILTIN)
        if plays and not agent.own_login and isinstance(target, str):
            found.append(f"{field}`: {target.removeprefix('swarmd: ')}")
        keys = {target.key} if not isinstance(target, str) and target.key else set()
        for entry in agent.env:
            name, given, value = entry.partition("=")
            if (value if given else os.environ.get(name)) in keys:
                found.append(f"{field}.env`: {name} holds the key the gateway uses for this role; agents never "
                             "hold it (the gateway puts it in their requests)")
        if in_usd and agent.model and price_for(route(agent), None) is None:
            found.append(f"{field}.price`: litellm has no price for {agent.model!r}, so a budget in max_usd "
                         "cannot hold; set price: {input: USD, output: USD} per million tokens, or budget in max_tokens")
    return found


def _not_runnable(program: str) -> str | None:
    if "/" not in program:
        return None if shutil.which(program) else f"{program!r} is not a program on PATH; give its absolute path"
    path = Path(program)
    if not path.is_absolute():
        return f"{program!r} is a relative path, and agents run in their own worktrees; give the absolute path"
    if not (path.is_file() and os.access(path, os.X_OK)):
        return f"{program!r} is not an executable file"
    return None
