"""Codex CLI (`codex`, npm @openai/codex) as a swarmd agent.

    CODEX_HOME=RUN/codex-home codex exec --json --ephemeral --color never
        --dangerously-bypass-approvals-and-sandbox -o RUN/codex-last-message.md - < PROMPT

- The prompt goes on stdin (`-`); `exec` runs one turn and exits.
- The gateway: a private `CODEX_HOME` in the run folder (outside the worktree; Codex keeps its databases,
  logs and shell snapshots there) whose config.toml names one provider, `swarmd`, with
  `base_url = "$SWARM_GATEWAY_URL/v1"` (Codex adds `/responses`, keeping the `/agent/<token>` path),
  `env_key = "SWARM_GATEWAY_TOKEN"` (sent as `Authorization: Bearer`), `wire_api = "responses"` (the only
  API it speaks) and `request_max_retries`/`stream_max_retries` from `retries`. It ignores
  `OPENAI_BASE_URL`. With `own_login` the provider uses the login in the user's `~/.codex/auth.json`.
- No sandbox and no approvals: `-s workspace-write` would make `.git` read-only, and the handoff file is
  outside the worktree. It does not commit; swarmd commits what it leaves.
- The result: its last message (`-o`) is the summary; the JSONL events on stdout give the usage
  (`turn.completed`) and the failure (`turn.failed`, `error`). It retries a 402 like any error, so the
  adapter stops it on the gateway's "swarmd: budget spent"; a 401, 403 or 404 exits 78.
"""

from __future__ import annotations

import json
import os
import re
from pathlib import Path
from typing import Any

from swarmd.backends import process
from swarmd.backends.common import UNREACHABLE, Failed, Job, Misconfigured, Report, Usage, budget_spent

TITLE = "Codex"
COMMAND = "codex"  # looked up on PATH unless agents.<role>.executable names it
INSTALL = "npm install -g @openai/codex"
CONFIG_STATUS = re.compile(r"unexpected status (401|403|404)\b")  # a refused key, an unknown model


def run(job: Job) -> Report:
    url, _ = job.gateway()
    home = job.run_dir / "codex-home"
    home.mkdir(exist_ok=True)
    (home / "config.toml").write_text(config(job, url), encoding="utf-8")
    if job.own_login:
        _link_login(job, home)
    last_message = job.run_dir / "codex-last-message.md"
    last_message.unlink(missing_ok=True)
    argv = [job.executable(COMMAND, INSTALL), "exec", "--json", "--ephemeral", "--color", "never",
            "--dangerously-bypass-approvals-and-sandbox", "-o", str(last_message), "-"]
    env = job.env({"CODEX_HOME": str(home)}, drop=["OPENAI_API_KEY", "CODEX_API_KEY", "OPENAI_BASE_URL"])
    ran = process.run(argv, cwd=job.worktree, env=env, stdin=job.prompt_file, watch=watch)
    found = ran.events()
    counted = tokens(found)
    usage = None if counted is None else job.priced(counted)
    job.check_stopped(ran.stopped, "codex login", usage)
    if ran.status != 0 or any(e.get("type") == "turn.failed" for e in found):  # not `error`: it may retry
        errors = [m for m in (_error_message(line) for line in ran.lines()) if m]
        said = errors[-1] if errors else ran.last_line() or "nothing"
        if CONFIG_STATUS.search(said) or UNREACHABLE in said:
            raise job.misconfigured(f"Codex: {said}", "codex login", usage)
        raise Failed(f"Codex exited {ran.status}: {said}", usage)
    try:
        message = last_message.read_text(encoding="utf-8", errors="replace")
    except FileNotFoundError:
        message = _last_agent_message(found)
    return Report(message, usage)


def config(job: Job, url: str) -> str:
    provider = {"name": "swarmd gateway", "base_url": f"{url}/v1", "wire_api": "responses",
                "request_max_retries": job.retries, "stream_max_retries": job.retries}
    if job.own_login:
        provider["requires_openai_auth"] = True
    else:
        provider["env_key"] = "SWARM_GATEWAY_TOKEN"
    lines = ([f"model = {_toml(job.model)}"] if job.model else []) + [
        'model_provider = "swarmd"', "check_for_update_on_startup = false", "",
        "[analytics]", "enabled = false", "", "[history]", 'persistence = "none"', "",
        "[model_providers.swarmd]", *(f"{key} = {_toml(value)}" for key, value in provider.items())]
    return "\n".join(lines) + "\n"


def watch(line: str) -> Failed | None:
    """Stop Codex at an error it would retry for nothing: a spent budget, a refused key."""
    message = _error_message(line)
    reason = budget_spent(message)
    if reason is not None:
        return Failed(reason)
    if CONFIG_STATUS.search(message):
        return Misconfigured(f"Codex: {message}")  # run() adds what to check
    return None


def _error_message(line: str) -> str:
    """The message of an `error` or `turn.failed` event, without Codex's retry count and the URL (which
    holds the agent's token)."""
    if not line.startswith("{") or '"error' not in line:
        return ""
    try:
        event = json.loads(line)
    except ValueError:
        return ""
    if not isinstance(event, dict) or event.get("type") not in ("error", "turn.failed"):
        return ""
    error = event.get("error")
    message = str(event.get("message") or (error.get("message") if isinstance(error, dict) else "") or "")
    retrying = re.fullmatch(r"Reconnecting\.\.\. \d+/\d+ \((.*)\)", message, re.DOTALL)
    return re.sub(r", url: \S+$", "", retrying.group(1) if retrying else message)


def tokens(found: list[dict[str, Any]]) -> Usage | None:
    """The sum over its turns (None if no turn completed: Codex reports usage only then); OpenAI's input
    tokens count the cached ones, as the contract's do."""
    turns = [e["usage"] for e in found if e.get("type") == "turn.completed" and isinstance(e.get("usage"), dict)]
    if not turns:
        return None

    def total(key: str) -> int:
        return sum(value for usage in turns if isinstance(value := usage.get(key), int))

    return Usage(total("input_tokens"), total("output_tokens"), total("cached_input_tokens"))


def _last_agent_message(found: list[dict[str, Any]]) -> str:
    for event in reversed(found):
        item = event.get("item") if event.get("type") == "item.completed" else None
        if isinstance(item, dict) and item.get("type") == "agent_message":
            return str(item.get("text") or "")
    return ""


def _link_login(job: Job, home: Path) -> None:
    """Own login: the provider takes its credentials from the user's Codex login."""
    theirs = Path(job.environ.get("CODEX_HOME") or Path(job.environ.get("HOME", "~")) / ".codex").expanduser()
    if not (theirs / "auth.json").is_file():
        raise Misconfigured(f"own_login is set but there is no Codex login at {theirs / 'auth.json'}; run "
                            f"`codex login`, or set agents.{job.role}.own_login to false")
    (home / "auth.json").unlink(missing_ok=True)
    os.symlink(theirs / "auth.json", home / "auth.json")


def _toml(value: Any) -> str:
    """A TOML value: JSON's strings, numbers and booleans are TOML's too."""
    return json.dumps(value)
