"""`swarmd agent`: the built-in agent, as the daemon runs it for every role whose `command` is null. It
follows the agent contract and nothing else: the SWARM_* variables, the prompt file, the role's settings
file, its worktree, and the result file.

Exit status: 0 with a result written; 1 when the attempt failed (the result says why, with the usage so
far); 78 when the role is misconfigured (a wrong key, an unknown model, an unreachable `api_base`): the
daemon then pauses the role and does not count the attempt; 2 when it was not started as the contract says.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Any

from swarmd.agents import contract
from swarmd.agents.contract import CONFIG_EXIT, Assignment, ContractError
from swarmd.agents.llm.transcript import NAME as TRANSCRIPT, Transcript


def main() -> int:
    try:
        job = contract.assignment(os.environ, Path.cwd())
    except ContractError as exc:
        print(f"swarmd agent: {exc}", file=sys.stderr)
        return 2
    print(f"swarmd agent: {job.role} {job.task_id}, cycle {job.cycle}, attempt {job.attempt}", flush=True)
    # Imported here: the loop pulls in the model, which imports litellm (seconds).
    from swarmd.agents.llm.loop import Loop, Stopped
    from swarmd.agents.llm.model import Misconfigured, Model, Settings
    from swarmd.agents.llm.tools import Workspace

    transcript = Transcript(job.log_dir / TRANSCRIPT)
    loop: Loop | None = None
    try:
        settings = Settings.of(job.settings, os.environ)
        print(f"swarmd agent: model {settings.model}{' at ' + settings.api_base if settings.api_base else ''}", flush=True)
        workspace = Workspace(
            root=job.worktree, env=contract.command_environment(os.environ, (settings.api_key or "",)),
            role=job.role, task_id=job.task_id, max_depth=settings.depth,
        )
        loop = Loop(Model(settings), settings, workspace, transcript)
        result = loop.run(system_prompt(job, workspace), job.prompt)
    except Misconfigured as exc:
        _failed(job, loop, f"configuration error: {exc}")
        return CONFIG_EXIT
    except Stopped as exc:
        _failed(job, loop, str(exc))
        return 1
    contract.write_result(job.result_file, {**result, "usage": loop.usage.contract()})
    print(f"swarmd agent: finished: {_first_line(result.get('summary', ''))}", flush=True)
    return 0


def system_prompt(job: Assignment, workspace: Any) -> str:
    from swarmd import prompts
    from swarmd.agents.llm.tools import specs

    overrides = Path(job.settings.get("prompts") or job.worktree / ".swarm" / "prompts")
    names = [spec["function"]["name"] for spec in specs(workspace)]
    return prompts.render("agent-system", overrides.parent.parent,
                          {"role": job.role, "task_id": job.task_id, "tools": names})


def _failed(job: Assignment, loop: Any, reason: str) -> None:
    """Say why (the last line of the log is what the daemon reports), and hand the usage over: a
    planner's or worker's failed attempt still records what it spent."""
    if loop is not None and job.role != "judge":
        summary = f"The built-in agent stopped: {reason}"
        contract.write_result(job.result_file, {"summary": summary, "usage": loop.usage.contract()})
    print(f"swarmd agent: {reason}", flush=True)


def _first_line(text: str) -> str:
    return (text.strip().splitlines() or [""])[0][:200]
