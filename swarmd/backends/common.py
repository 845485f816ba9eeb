"""What the adapters share: the assignment and the role's settings as one Job, the way a run ends (a
Report, or an exception that carries the reason and the exit status), and the result file.

    Failed          exit 1: the attempt failed (a spent budget, a CLI error, no final message)
    └── Misconfigured   exit 78: the role cannot run as configured; the daemon pauses it

Each CLI's module has `TITLE` and `run(job) -> Report`; `main` does the rest.
"""

from __future__ import annotations

import importlib
import os
import re
import shutil
import sys
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from swarmd.agents import contract
from swarmd.agents.contract import CONFIG_EXIT, GATEWAY_TOKEN, GATEWAY_URL, SETTINGS_VAR, Assignment, ContractError
from swarmd.backends import BACKENDS
from swarmd.gateway.apis import Counts
from swarmd.gateway.prices import Price

BUDGET_SPENT = "swarmd: budget spent"  # how the gateway's 402 message starts
UNREACHABLE = "swarmd: the gateway cannot reach"  # its 502: the role's upstream, after the CLI's own retries


@dataclass(frozen=True)
class Usage:
    input_tokens: int = 0  # the whole prompt, the cached part included
    output_tokens: int = 0
    cached_tokens: int = 0
    cost_usd: float | None = None

    def contract(self) -> dict[str, Any]:
        return {"input_tokens": self.input_tokens, "output_tokens": self.output_tokens,
                "cached_tokens": self.cached_tokens, "cost_usd": self.cost_usd}


class Failed(Exception):
    """The attempt failed: str(exc) is the reason, one line; `usage` what the CLI said it spent."""

    exit_code = 1

    def __init__(self, reason: str, usage: Usage | None = None) -> None:
        super().__init__(one_line(reason))
        self.usage = usage


class Misconfigured(Failed):
    exit_code = CONFIG_EXIT


@dataclass(frozen=True)
class Report:
    """A run that went through: the CLI's final message and what it spent."""

    summary: str
    usage: Usage | None = None


def one_line(text: str, limit: int = 600) -> str:
    line = " ".join(text.split())
    return line if len(line) <= limit else line[:limit - 3] + "..."


def budget_spent(text: str) -> str | None:
    """The gateway's reason if `text` carries its 402 message."""
    start = text.find(BUDGET_SPENT)
    return None if start < 0 else one_line(text[start:]).rstrip("\"'}) ")


@dataclass(frozen=True)
class Job:
    backend: str  # "claude-code", "codex", "aider" or "qwen-code"
    assignment: Assignment
    environ: Mapping[str, str]

    @property
    def role(self) -> str:
        return self.assignment.role

    @property
    def worktree(self) -> Path:
        return self.assignment.worktree

    @property
    def run_dir(self) -> Path:
        """The run's folder, outside the worktree: the CLI's own files go here."""
        return self.assignment.log_dir

    @property
    def prompt_file(self) -> Path:
        return Path(self.environ["SWARM_PROMPT_FILE"])

    def setting(self, name: str, default: Any = None) -> Any:
        value = self.assignment.settings.get(name)
        return default if value is None else value

    @property
    def model(self) -> str | None:
        """The model as the CLI asks the gateway for it: the `model` setting without its provider
        (`anthropic/claude-sonnet-4-5` -> `claude-sonnet-4-5`; the gateway routes by the provider)."""
        model = self.setting("model")
        return None if model is None else str(model).partition("/")[2] or str(model)

    @property
    def own_login(self) -> bool:
        return bool(self.setting("own_login", False))

    @property
    def retries(self) -> int:
        return int(self.setting("retries", 1))

    def gateway(self) -> tuple[str, str]:
        """The gateway's URL for this agent (no trailing slash) and the token to send as the key."""
        url, token = self.environ.get(GATEWAY_URL, "").rstrip("/"), self.environ.get(GATEWAY_TOKEN, "")
        if not url or not token:
            raise Misconfigured(f"{GATEWAY_URL} or {GATEWAY_TOKEN} is not set: the {self.backend} backend "
                                "runs under swarmd's gateway; start it with `swarmd start`")
        return url, token

    def executable(self, command: str, install: str) -> str:
        """The CLI to run: `executable` from the settings, else `command` on PATH."""
        given, path = self.setting("executable"), self.environ.get("PATH", os.defpath)
        found = shutil.which(os.path.expanduser(given) if given else command, path=path)
        if found is not None:
            return found
        if given:
            raise Misconfigured(f"agents.{self.role}.executable: {given} is not an executable file; set it "
                                f"to the path of {command}, or install it with `{install}`")
        raise Misconfigured(f"{command} not found on PATH; install it with `{install}` or set "
                            f"agents.{self.role}.executable")

    def env(self, add: Mapping[str, str], drop: Iterable[str] = ()) -> dict[str, str]:
        """The CLI's environment: the agent's, less its settings file and `drop`, plus `add`."""
        dropped = {SETTINGS_VAR, *drop}
        return {**{k: v for k, v in self.environ.items() if k not in dropped}, **add}

    def priced(self, usage: Usage, cost: float | None = None) -> Usage:
        """`usage` with its cost: from the role's `price` when set, else `cost` (the CLI's own, or none)."""
        price = self.setting("price")
        if price:  # priced as the gateway prices
            per_token = Price.per_million(price["input"], price["output"], price.get("cached_input"))
            cost = per_token.cost(Counts(usage.input_tokens, usage.output_tokens, usage.cached_tokens))
        return Usage(usage.input_tokens, usage.output_tokens, usage.cached_tokens, cost)

    def check_stopped(self, stopped: Failed | None, login: str, usage: Usage | None) -> None:
        """The adapter stopped the CLI (a spent budget, a refused key): the run ends with that reason."""
        if isinstance(stopped, Misconfigured):
            raise self.misconfigured(str(stopped), login, usage)
        if stopped is not None:
            raise Failed(str(stopped), usage)

    def misconfigured(self, said: str, login: str, usage: Usage | None = None) -> Misconfigured:
        """The CLI heard a refused key, an unknown model or an unreachable upstream: what to check."""
        fix = f"`{login}`" if self.own_login else "the key the gateway uses for it (api_key_env)"
        return Misconfigured(f"{one_line(said)}; check agents.{self.role}.model, api_base and {fix}", usage)

    def say(self, line: str) -> None:
        """One line to the log; the last one before the adapter exits is the reason the daemon shows."""
        print(f"swarmd {self.backend}: {line}", flush=True)


def main(argv: list[str]) -> int:
    if len(argv) != 1 or argv[0] not in BACKENDS:
        print(f"usage: python -m swarmd.backends {{{','.join(BACKENDS)}}}", file=sys.stderr)
        return 2
    name = argv[0]
    try:
        job = Job(name, contract.assignment(os.environ, Path.cwd()), os.environ)
    except ContractError as exc:
        print(f"swarmd {name}: {exc}", file=sys.stderr)
        return 2
    backend = importlib.import_module(f"swarmd.backends.{BACKENDS[name]}")
    job.say(f"{job.role} {job.assignment.task_id}, cycle {job.assignment.cycle}, attempt {job.assignment.attempt}")
    try:
        summary = hand_over(job, backend.run(job), backend.TITLE)
    except Failed as exc:
        if job.role != "judge":  # a failed attempt still says why, and what it spent
            contract.write_result(job.assignment.result_file, {
                "summary": f"{backend.TITLE} stopped: {exc}",
                **({"usage": exc.usage.contract()} if exc.usage is not None else {})})
        job.say(str(exc))
        return exc.exit_code
    job.say(f"finished: {one_line(summary, 200)}")
    return 0


def hand_over(job: Job, report: Report, title: str) -> str:
    """Write the result file: the one the CLI wrote if it is valid, with the usage the CLI reported, or
    else one from its final message. Returns the summary."""
    from swarmd.daemon.results import BadResult, read_result  # pydantic: only once the CLI is done
    from swarmd.tasks import Judgement, Result

    model = Judgement if job.role == "judge" else Result
    try:
        written, problem = read_result(job.assignment.result_file, model), None
    except BadResult as exc:
        written, problem = None, str(exc)
    if written is not None:
        result = written.model_dump(mode="json", exclude_none=True)
    elif job.role == "judge":
        result = _verdict(report.summary, model)
        if result is None:
            raise Failed(f"the judge wrote no verdict: {problem or 'nothing at SWARM_RESULT_FILE'}, and its "
                         "final message is not one either", report.usage)
    else:
        result = {"summary": report.summary.strip() or f"{title} finished without a final message."}
        if problem:
            result["concerns"] = [f"The handoff {title} wrote was refused, and replaced by its final message: "
                                  f"{problem}"]
    if report.usage is not None:
        result["usage"] = report.usage.contract()
    contract.write_result(job.assignment.result_file, result)
    return str(result["summary"])


def _verdict(text: str, model: Any) -> dict[str, Any] | None:
    """A judge's final message that is its result as YAML (fenced or not), else None."""
    from swarmd import yamlio
    from swarmd.errors import ValidationError

    fenced = re.search(r"```(?:ya?ml)?\n(.*?)```", text, re.DOTALL)
    try:
        return yamlio.load_model(model, fenced.group(1) if fenced else text, "the final message").model_dump(
            mode="json", exclude_none=True)
    except ValidationError:
        return None
