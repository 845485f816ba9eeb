"""Claude Code (`claude`, npm @anthropic-ai/claude-code) as a swarmd agent.

    claude -p --output-format json --dangerously-skip-permissions [--max-turns N] [--model M] --settings FILE < PROMPT

- The prompt goes on stdin (no argument-length limit); print mode runs one session and exits.
- The gateway: `ANTHROPIC_BASE_URL=$SWARM_GATEWAY_URL` (Claude Code adds `/v1/messages`, keeping the
  `/agent/<token>` path), `ANTHROPIC_API_KEY=$SWARM_GATEWAY_TOKEN` (sent as `x-api-key`). With `own_login`
  no key is set, so the user's own login (`claude login`, in their HOME) passes through the gateway. The
  same variables go in `--settings`, which wins over the user's and the repository's settings files.
- Permissions: the worktree lives under `.git/swarm/pool/`, where Claude Code refuses its Write and Bash
  tools in every mode but `--dangerously-skip-permissions`, which as root needs `IS_SANDBOX=1`.
- Quiet: no telemetry, error reports, auto-update or other non-essential traffic; `CLAUDE_CODE_MAX_RETRIES`
  from `retries` (by default it retries for minutes, a 401 included; it does not retry a 402).
- The result: the JSON object it prints last: `result` is the final message, `usage` the session's
  tokens, `total_cost_usd` its own estimate (used when the role has no `price`). `is_error` with
  `api_error_status` tells a failed run: 401, 403 or 404 (a refused key, an unknown model) exit 78.
"""

from __future__ import annotations

import json
import os
from typing import Any

from swarmd.backends import process
from swarmd.backends.common import UNREACHABLE, Failed, Job, Report, Usage, budget_spent

TITLE = "Claude Code"
COMMAND = "claude"  # looked up on PATH unless agents.<role>.executable names it
INSTALL = "npm install -g @anthropic-ai/claude-code"
QUIET = {"CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC": "1", "DISABLE_TELEMETRY": "1", "DISABLE_AUTOUPDATER": "1",
         "DISABLE_ERROR_REPORTING": "1"}
CONFIG_STATUSES = {401, 403, 404}  # a refused key or login, an unknown model: retrying will not help


def run(job: Job) -> Report:
    url, token = job.gateway()
    argv = [job.executable(COMMAND, INSTALL), "-p", "--output-format", "json", "--dangerously-skip-permissions"]
    if job.setting("max_steps"):
        argv += ["--max-turns", str(job.setting("max_steps"))]
    if job.model:
        argv += ["--model", job.model]
    env = {**QUIET, "ANTHROPIC_BASE_URL": url, "CLAUDE_CODE_MAX_RETRIES": str(job.retries)}
    if os.geteuid() == 0:
        env["IS_SANDBOX"] = "1"  # else --dangerously-skip-permissions refuses to run as root
    if not job.own_login:
        env["ANTHROPIC_API_KEY"] = token
    # Settings in the user's HOME or the repository's .claude/ may set variables that win over the
    # environment (another base URL, Bedrock, a key): the flag's settings win over theirs.
    routed = {"ANTHROPIC_BASE_URL": url, "CLAUDE_CODE_USE_BEDROCK": "", "CLAUDE_CODE_USE_VERTEX": "",
              **({} if job.own_login else {"ANTHROPIC_API_KEY": token, "ANTHROPIC_AUTH_TOKEN": ""})}
    settings = job.run_dir / "claude-settings.json"  # a file, not argv, which `ps` shows every user
    fd = os.open(settings, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as out:
        json.dump({"env": routed}, out)
    argv += ["--settings", str(settings)]
    # Neither a key of the agent's environment nor a bearer token may stand in for the gateway's.
    drop = ["ANTHROPIC_AUTH_TOKEN"] + (["ANTHROPIC_API_KEY"] if job.own_login else [])
    ran = process.run(argv, cwd=job.worktree, env=job.env(env, drop), stdin=job.prompt_file)
    found = result(ran.output)
    if found is None:
        raise Failed(f"claude exited {ran.status} without its JSON result; it said: {ran.last_line() or 'nothing'}")
    cost = found.get("total_cost_usd")
    usage = job.priced(tokens(found.get("usage") or {}), cost if isinstance(cost, (int, float)) else None)
    message = str(found.get("result") or "")
    if found.get("is_error") or ran.status != 0 or found.get("subtype") != "success":
        raise failure(found, message, job, usage)
    return Report(message, usage)


def failure(found: dict[str, Any], message: str, job: Job, usage: Usage | None) -> Failed:
    status = found.get("api_error_status")
    if reason := budget_spent(message):
        return Failed(reason, usage)
    if status in CONFIG_STATUSES or "/login" in message or UNREACHABLE in message:
        return job.misconfigured(f"Claude Code: {message or f'error {status}'}", "claude login", usage)
    if found.get("subtype") == "error_max_turns":
        return Failed(f"Claude Code used all {job.setting('max_steps')} turns (agents.{job.role}.max_steps) "
                      "without finishing", usage)
    return Failed(f"Claude Code failed ({found.get('subtype')}): {message or 'no message'}", usage)


def result(output: str) -> dict[str, Any] | None:
    """The JSON object `--output-format json` prints last."""
    for line in reversed(output.splitlines()):
        if line.startswith("{"):
            try:
                found = json.loads(line)
            except ValueError:
                continue
            if isinstance(found, dict) and found.get("type") == "result":
                return found
    return None


def tokens(usage: dict[str, Any]) -> Usage:
    """Anthropic's usage counts the cached parts of the prompt apart; the contract's input counts them too."""
    def count(key: str) -> int:
        value = usage.get(key)
        return value if isinstance(value, int) else 0

    cached = count("cache_read_input_tokens")
    return Usage(input_tokens=count("input_tokens") + cached + count("cache_creation_input_tokens"),
                 output_tokens=count("output_tokens"), cached_tokens=cached)
