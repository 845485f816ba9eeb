"""`swarmd agent`: the built-in agent, as the daemon runs it for every role whose `command` is null. It
follows the agent contract and nothing else: the SWARM_* variables, the prompt file, the role's settings
file, its worktree, and the result file.

Exit status: 0 with a result written; 1 when the attempt failed (the result says why, with the usage so
far); 78 when the role is misconfigured (a wrong key, an unknown model, an unreachable `api_base`): the
daemon then pauses the role and does not count the attempt; 2 when it was not started as the contract says.
"""

from __future__ import annotations

import json
import logging
import os
import sys
import traceback
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from swarmd.agents import contract
from swarmd.agents.contract import CONFIG_EXIT, Assignment, ContractError
from swarmd.agents.llm.transcript import NAME as TRANSCRIPT, Transcript
from swarmd.secrets import SECRET_NAME, Redactor

SECRETS_FD = "SWARMD_AGENT_SECRETS_FD"  # the pipe the secrets come through after the agent re-executes itself
_hidden: set[str] = set()  # the names of the variables hide_secrets took out of the environment


def main() -> int:
    try:
        job = contract.assignment(os.environ, Path.cwd())
    except ContractError as exc:
        print(f"swarmd agent: {exc}", file=sys.stderr)
        return 2
    hide_secrets(job.settings.get("api_key_env"))  # the gateway's token, and a key where there is no gateway
    logging.basicConfig(format="swarmd agent: %(message)s", level=logging.WARNING)
    say(f"{job.role} {job.task_id}, cycle {job.cycle}, attempt {job.attempt}")
    # Imported here: the loop pulls in the model, which imports litellm (seconds).
    from swarmd.agents.llm.loop import Loop, Stopped
    from swarmd.agents.llm.model import BudgetSpent, Misconfigured, Model, Settings, shown_url
    from swarmd.agents.llm.tools import Workspace

    loop: Loop | None = None
    try:
        settings = Settings.of(job.settings, os.environ)
        say(f"model {settings.model}{' at ' + shown_url(settings.api_base) if settings.api_base else ''}")
        workspace = Workspace(
            root=job.worktree, env=contract.command_environment(os.environ, (settings.api_key or "",)),
            role=job.role, task_id=job.task_id, max_depth=settings.depth,
        )
        system = system_prompt(job, workspace, Misconfigured)
        loop = Loop(Model(settings), settings, workspace, Transcript(job.log_dir / TRANSCRIPT))
        if job.role != "judge":  # killed at its timeout or stopped, it has still said what it spent
            loop.on_usage = lambda usage: contract.write_result(
                job.result_file, {"summary": "The built-in agent was stopped before it finished.",
                                  "usage": usage.contract()})
        result = loop.run(system, job.prompt)
    except Misconfigured as exc:
        _failed(job, loop, f"configuration error: {exc}")
        return CONFIG_EXIT
    except BudgetSpent as exc:  # a clean stop: what it did is committed for it, and it says so
        assert loop is not None
        if job.role == "judge":  # a verdict it has not reached is no verdict
            say(f"budget spent: {exc}")
            return 1
        contract.write_result(job.result_file, {
            "summary": f"Budget spent; stopped before the task was done. {exc}",
            "concerns": ["Not done: the budget ran out. What this attempt did is on its branch; its last steps "
                         "are in its transcript (`swarmd show`)."],
            "usage": loop.usage.contract()})
        say(f"budget spent: {exc}")
        return 0
    except Stopped as exc:
        _failed(job, loop, str(exc))
        return 1
    except Exception as exc:  # a bug of swarmd's: the traceback to the log, and the attempt fails cleanly
        traceback.print_exc()
        _failed(job, loop, f"swarmd agent failed ({type(exc).__name__}: {exc}); the traceback is in its log")
        return 1
    contract.write_result(job.result_file, {**result, "usage": loop.usage.contract()})
    say(f"finished: {_first_line(result.get('summary', ''))}")
    return 0


def hide_secrets(key_env: str | None) -> None:
    """Keep secrets out of what the model's commands can read: not only out of their environment, but
    out of `/proc/<agent>/environ` too, which shows the environment a process was started with. So the
    agent starts itself again without them, and takes them over a pipe; set in the new process, they
    are in its memory, not in that record."""
    fd = os.environ.pop(SECRETS_FD, None)
    if fd is not None:
        with os.fdopen(int(fd), "rb") as pipe:
            secrets = json.loads(pipe.read())
        os.environ.update(secrets)
        _hidden.update(secrets)
        return
    secrets = {name: value for name, value in os.environ.items()
               if name == key_env or SECRET_NAME.search(name)}
    data = json.dumps(secrets).encode()
    if not secrets or len(data) > 60_000:  # more than a pipe holds before anyone reads it: leave them
        return
    read, write = os.pipe()
    os.write(write, data)
    os.close(write)
    os.set_inheritable(read, True)
    env = {name: value for name, value in os.environ.items() if name not in secrets}
    os.execve(sys.executable, [sys.executable, "-P", "-m", "swarmd", "agent"], {**env, SECRETS_FD: str(read)})


def system_prompt(job: Assignment, workspace: Any, misconfigured: type[Exception]) -> str:
    from swarmd import prompts
    from swarmd.agents.llm.tools import specs
    from swarmd.errors import SwarmError

    overrides = Path(job.settings.get("prompts") or job.worktree / ".swarm" / "prompts")
    names = [spec["function"]["name"] for spec in specs(workspace)]
    try:
        return prompts.render("agent-system", overrides.parent.parent,
                              {"role": job.role, "task_id": job.task_id, "tools": names})
    except SwarmError as exc:  # a broken override fails every run of every role alike
        raise misconfigured(str(exc)) from None


def say(line: str) -> None:
    """One line to the log. The last line before exiting is the reason the daemon records (and commits),
    so no secret may be in it."""
    print(f"swarmd agent: {redact(line, os.environ)}", flush=True)


def redact(text: str, environ: Mapping[str, str]) -> str:
    return Redactor(environ, _hidden)(text)


def _failed(job: Assignment, loop: Any, reason: str) -> None:
    """Say why (the last line of the log is what the daemon reports), and hand the usage over: a
    planner's or worker's failed attempt still records what it spent."""
    reason = redact(reason, os.environ)
    if loop is not None and job.role != "judge":
        contract.write_result(job.result_file, {"summary": f"The built-in agent stopped: {reason}",
                                                "usage": loop.usage.contract()})
    say(reason)


def _first_line(text: str) -> str:
    return (text.strip().splitlines() or [""])[0][:200]
