"""`swarmd init`: the user's `.swarm/config.yaml` and `goal.md`, `.git/swarm/`, and the integration branch.

Validates everything before writing anything; each piece that already exists is kept, so a second run
changes nothing and an interrupted run is completed by the next one.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

from swarmd import resources, yamlio
from swarmd.config import load_config
from swarmd.daemon import tipfile
from swarmd.errors import UsageError
from swarmd.git.landing import start_branch
from swarmd.git.repo import Repo
from swarmd.layout import AGENT_BRANCHES, CONFIG_PATH, DEFAULT_BRANCH, GOAL_PATH, SWARM_DIR


@dataclass
class InitReport:
    workdir: Path
    branch: str
    tip: str
    created: list[str] = field(default_factory=list)


def init(start: Path, goal: str | None = None, branch: str | None = None, model: str | None = None,
         agent: str | None = None) -> InitReport:
    repo = Repo.discover(start)
    workdir = repo.workdir
    config_file, goal_file = workdir / CONFIG_PATH, workdir / GOAL_PATH

    if config_file.exists():
        configured = load_config(workdir).integration.branch
        if branch is not None and branch != configured:
            raise UsageError(
                f"{CONFIG_PATH}: field `integration.branch` is {configured!r}, but --branch says {branch!r}; "
                "edit the config or leave out --branch"
            )
        branch = configured
    branch = branch or DEFAULT_BRANCH
    _check_branch_name(repo, branch)
    goal_text = _goal_text(goal_file, goal)
    if model is not None and not model.strip():
        raise UsageError("--model: empty; give a litellm model string such as anthropic/claude-sonnet-4-5")
    if model is not None and config_file.exists():
        raise UsageError(f"{CONFIG_PATH}: already exists; set agents.<role>.model there instead of passing --model")
    if agent in ("aider", "qwen-code") and model is None:
        raise UsageError(f"--agent {agent}: {agent} needs a model; add --model, e.g. --model openai/gpt-4.1")
    if agent is not None and config_file.exists():
        raise UsageError(f"{CONFIG_PATH}: already exists; set agents.<role>.backend there instead of passing --agent")

    report = InitReport(workdir, branch, tip="")
    repo.swarm_dir.mkdir(parents=True, exist_ok=True)
    if not config_file.exists():
        template = resources.read_text("templates", "config.yaml")
        template = template.replace(f"branch: {DEFAULT_BRANCH}", f"branch: {branch}", 1)
        if model is not None:
            template = template.replace("    model: null\n", f"    model: {_scalar(model.strip())}\n")
        if agent is not None:
            template = template.replace("    backend: builtin\n", f"    backend: {agent}\n")
        _write_new(config_file, template)
        who = "the built-in agent" if agent in (None, "builtin") else agent
        report.created.append(f"{CONFIG_PATH} (every key documented; edit it here)"
                              + (f", {who}{' on ' + model.strip() if model else ''} in every role" if model or agent else ""))
    if goal_text is None:
        tip = repo.branch_tip(branch)
        goal_text = (tip and yamlio.decode(repo.read_file(tip, GOAL_PATH) or b"", GOAL_PATH)) or resources.read_text(
            "templates", "goal.md"
        )
    if not goal_file.exists():
        _write_new(goal_file, goal_text)
        report.created.append(f"{GOAL_PATH} (what the swarm works towards; edit it here)")

    tip = repo.branch_tip(branch)
    if tip is None:
        head = repo.head_commit()
        tip = start_branch(repo, branch, head, {GOAL_PATH: goal_text.encode()}, "swarmd: start the integration branch")
        tipfile.remember(repo.swarm_dir, branch, tip)  # a branch made anew does not descend from an old run's tip
        report.created.append(f"branch {branch} at {tip[:10]}, from HEAD {head[:10]}, with a copy of the goal")
    report.tip = tip
    return report


def _scalar(value: str) -> str:
    """A string as one YAML scalar on the line (quoted when YAML would read it otherwise)."""
    import yaml

    return yaml.safe_dump(value, default_flow_style=True, width=1_000).removesuffix("\n...\n").strip()


def _check_branch_name(repo: Repo, branch: str) -> None:
    checked_out = repo.checked_out_branches()
    if branch in checked_out:
        raise UsageError(
            f"--branch {branch!r}: that branch is checked out in {checked_out[branch]}; swarmd never commits on "
            "your branches, so name a branch of its own (the default is swarm/main)"
        )
    if branch == "swarm" or branch.startswith(AGENT_BRANCHES):
        raise UsageError(f"--branch {branch!r}: swarmd keeps its agents' branches there; swarm/main is free")
    tip = repo.branch_tip(branch)
    if tip is None:
        problem = repo.branch_name_problem(branch)
        if problem:
            raise UsageError(f"--branch {branch!r}: {problem}")
    elif repo.tree_entry(tip, SWARM_DIR) is None:
        raise UsageError(
            f"--branch {branch!r}: that branch exists and was not created by swarmd (it has no .swarm/ tree); "
            "name another branch with --branch"
        )


def _goal_text(goal_file: Path, goal: str | None) -> str | None:
    """The goal to write when goal.md is missing: --goal's text; None to take it from elsewhere."""
    if goal is None:
        return None
    if not goal.strip():
        raise UsageError("--goal: the goal is empty; say what the swarm should achieve")
    text = goal if goal.endswith("\n") else goal + "\n"
    if goal_file.exists() and yamlio.decode(goal_file.read_bytes(), GOAL_PATH) != text:
        raise UsageError(f"{GOAL_PATH}: already exists with another goal; edit that file instead of passing --goal")
    return text


def _write_new(path: Path, text: str) -> None:
    """Write a file that must not exist yet, atomically."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.swarmd-tmp")
    tmp.write_text(text, encoding="utf-8")
    os.link(tmp, path)  # fails if the file appeared meanwhile: never overwrite the user's file
    tmp.unlink()
