"""Everything `swarmd start` would refuse, found without writing anything: `swarmd check` reports the
same list, and a start that is refused leaves no commit, no pool slot and no record behind."""

from __future__ import annotations

import os
import shutil
from dataclasses import dataclass
from pathlib import Path

from swarmd import prompts, store, yamlio
from swarmd.config import Agent, Config
from swarmd.daemon import tipfile
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
    found = _commands(config)
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
        elif problem := _not_runnable(command[0]):
            found.append(f"{field}: {problem}")
    if config.verify.command and (problem := _not_runnable(config.verify.command[0])):
        found.append(f"{CONFIG_PATH}: field `verify.command`: {problem}")
    return found


def _builtin_agent(role: Role, agent: Agent) -> list[str]:
    """A role the built-in agent plays needs a model, and the key variable it names must be set."""
    field = f"{CONFIG_PATH}: field `agents.{role.value}"
    if agent.model is None:
        return [f"{field}.model`: not set; the built-in agent needs a litellm model such as "
                f"anthropic/claude-sonnet-4-5 (`swarmd init --model` sets every role), or set "
                f"agents.{role.value}.command to an agent of your own (docs/agent-contract.md)"]
    if agent.api_key_env and not os.environ.get(agent.api_key_env):
        return [f"{field}.api_key_env`: the variable {agent.api_key_env} is not set in swarmd's environment; "
                f"export it before `swarmd start`"]
    return []


def _not_runnable(program: str) -> str | None:
    if "/" not in program:
        return None if shutil.which(program) else f"{program!r} is not a program on PATH; give its absolute path"
    path = Path(program)
    if not path.is_absolute():
        return f"{program!r} is a relative path, and agents run in their own worktrees; give the absolute path"
    if not (path.is_file() and os.access(path, os.X_OK)):
        return f"{program!r} is not an executable file"
    return None
