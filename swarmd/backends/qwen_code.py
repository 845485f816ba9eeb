"""Qwen Code (`qwen`, npm @qwen-code/qwen-code; Node.js 20 or newer) as a swarmd agent.

    QWEN_HOME=RUN/qwen-home QWEN_CODE_SYSTEM_SETTINGS_PATH=RUN/qwen-settings.json
    OPENAI_BASE_URL=$SWARM_GATEWAY_URL/v1 OPENAI_API_KEY=$SWARM_GATEWAY_TOKEN OPENAI_MODEL=M
    qwen --yolo --auth-type openai --input-format stream-json --output-format stream-json
         [--max-session-turns N] < RUN/qwen-prompt.jsonl

- The prompt goes on stdin as one stream-json user message (no argument-length limit). Plain text on
  stdin works too, but Qwen Code gives it 500 ms to arrive and then goes on without it.
- The gateway: OpenAI chat completions at `$SWARM_GATEWAY_URL/v1` (Qwen Code adds `/chat/completions`,
  keeping the `/agent/<token>` path), the token as `OPENAI_API_KEY` (sent as `Authorization: Bearer`).
  The same provider is in a system settings file, which wins over every other: a repository's
  `.qwen/settings.json` (a `modelProviders` entry, `security.auth`) or `.env` cannot send it elsewhere.
  Qwen Code has no login that goes through a base URL (Qwen OAuth's free tier ended): no `own_login`.
- Its own files go to a private `QWEN_HOME` in the run folder (a debug log, temporary files); the user's
  `~/.qwen` is not read, HOME is not written. At start it rewrites a repository's `.qwen/settings.json`
  that lacks its `$version` (keeping the original as `settings.json.orig`); the adapter puts the
  original back when it exits.
- Quiet: no usage statistics, telemetry, update check or preconnect; none of its background model calls
  (memory extraction, tool-use summaries, session titles); no chat recording; commits as the model
  wrote them (no Co-authored-by trailer, no `refs/notes/ai-attribution`).
- Retries: `retries` is its OpenAI client's `maxRetries`; its own loop adds up to 7 attempts of each
  call on a 429 or a 5xx (about 90 s), whatever is set. It retries no other error.
- The result: stream-json events on stdout. The `result` event has the final message and, in `stats`,
  the tokens of every model call. After an API error it exits 0 with the error as its final message,
  `[API Error: 402 swarmd: budget spent: ...]`: the adapter stops it at the first such message, a spent
  budget exits 1, a 401, 403 or 404 exits 78. Exit 53: it used all `max_steps` turns.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

from swarmd.backends import process
from swarmd.backends.common import UNREACHABLE, Failed, Job, Misconfigured, Report, Usage, budget_spent

TITLE = "Qwen Code"
COMMAND = "qwen"  # looked up on PATH unless agents.<role>.executable names it
INSTALL = "npm install -g @qwen-code/qwen-code"
QUIET = {"QWEN_CODE_DISABLE_PRECONNECT": "1", "QWEN_DISABLE_AUTO_TITLE": "1"}
API_ERROR = re.compile(r"\[API Error: (?:(\d{3}) )?(.*)\]", re.DOTALL)  # a failed call, as its final message
CONFIG_STATUSES = {"401", "403", "404"}  # a refused key, an unknown model: retrying will not help
CONFIG_EXITS = {41, 52}  # its FatalAuthenticationError, FatalConfigError
TURN_LIMIT_EXIT = 53  # its FatalTurnLimitedError: --max-session-turns reached
SETTINGS_VERSION = 4  # the `$version` it writes; a settings file without it, it rewrites at start


def run(job: Job) -> Report:
    url, token = job.gateway()
    if job.own_login:
        raise Misconfigured(f"Qwen Code has no login that passes through the gateway: set "
                            f"agents.{job.role}.own_login to false and give the gateway the key (api_key_env)")
    if job.model is None:
        raise Misconfigured(f"Qwen Code needs a model: set agents.{job.role}.model, e.g. openrouter/qwen/qwen3-coder, "
                            "or openai/NAME with api_base for an OpenAI-compatible server")
    home = job.run_dir / "qwen-home"
    home.mkdir(exist_ok=True)
    system_settings = job.run_dir / "qwen-settings.json"
    system_settings.write_text(json.dumps(settings(job, f"{url}/v1"), indent=2) + "\n", encoding="utf-8")
    prompt = job.run_dir / "qwen-prompt.jsonl"
    text = job.prompt_file.read_text(encoding="utf-8", errors="replace")
    prompt.write_text(json.dumps({"type": "user", "message": {"role": "user", "content": text}}) + "\n",
                      encoding="utf-8")
    argv = [job.executable(COMMAND, INSTALL), "--yolo", "--auth-type", "openai",
            "--input-format", "stream-json", "--output-format", "stream-json"]
    if job.setting("max_steps"):
        argv += ["--max-session-turns", str(job.setting("max_steps"))]
    env = job.env({**QUIET, "QWEN_HOME": str(home), "QWEN_CODE_SYSTEM_SETTINGS_PATH": str(system_settings),
                   "OPENAI_BASE_URL": f"{url}/v1", "OPENAI_API_KEY": token, "OPENAI_MODEL": job.model},
                  drop=["QWEN_RUNTIME_DIR", "QWEN_CODE_UNATTENDED_RETRY"])  # its files elsewhere; endless retries
    workspace = job.worktree / ".qwen" / "settings.json"
    original = workspace.read_bytes() if workspace.is_file() else None
    backup = workspace.with_name("settings.json.orig")
    had_backup = backup.exists()
    try:
        ran = process.run(argv, cwd=job.worktree, env=env, stdin=prompt, watch=watch)
    finally:
        if original is not None and not had_backup:
            _undo_rewrite(workspace, backup, original)
    found = ran.events()
    counted = tokens(found)
    usage = None if counted is None else job.priced(counted)
    job.check_stopped(ran.stopped, "", usage)
    result = next((e for e in reversed(found) if e.get("type") == "result"), None)
    message = str(result.get("result") or "") if result is not None else _last_text(found)
    if error := API_ERROR.match(message):
        raise failure(error, job, usage)
    if ran.status == TURN_LIMIT_EXIT:
        raise Failed(f"Qwen Code used all {job.setting('max_steps')} turns (agents.{job.role}.max_steps) "
                     "without finishing", usage)
    if ran.status in CONFIG_EXITS:
        raise job.misconfigured(f"Qwen Code exited {ran.status}: {ran.last_line() or 'nothing'}", "", usage)
    if ran.status != 0 or result is None or result.get("is_error"):
        said = (message if result is not None else "") or ran.last_line() or "nothing"
        raise Failed(f"qwen exited {ran.status}{'' if result else ' without its result'}; it said: {said}", usage)
    return Report(message, usage)


def settings(job: Job, base_url: str) -> dict[str, Any]:
    """Its system settings: the gateway as the model's provider, and nothing that calls elsewhere."""
    generation: dict[str, Any] = {"maxRetries": job.retries}
    if job.setting("context_window"):
        generation["contextWindowSize"] = job.setting("context_window")
    provider = {"id": job.model, "name": job.model, "baseUrl": base_url, "envKey": "OPENAI_API_KEY",
                "generationConfig": generation}
    return {
        "$version": SETTINGS_VERSION,
        "security": {"auth": {"selectedType": "openai"}},
        "model": {"name": job.model},
        "modelProviders": {"openai": [provider]},  # replaces, not merges with, the repository's
        "general": {"enableAutoUpdate": False, "chatRecording": False,
                    "gitCoAuthor": {"commit": False, "pr": False}},
        "privacy": {"usageStatisticsEnabled": False},
        "telemetry": {"enabled": False},
        "memory": {"enableManagedAutoMemory": False, "enableManagedAutoDream": False, "enableAutoSkill": False},
        "experimental": {"emitToolUseSummaries": False},
    }


def watch(line: str) -> Failed | None:
    """Stop Qwen Code at a failed call that says the attempt is over: a spent budget, a refused key."""
    if not line.startswith('{"type":"assistant"'):
        return None
    try:
        event = json.loads(line)
    except ValueError:
        return None
    error = API_ERROR.match(_text(event)) if isinstance(event, dict) else None
    if error is None:
        return None
    if reason := budget_spent(error.group(2)):
        return Failed(reason)
    if error.group(1) in CONFIG_STATUSES:
        return Misconfigured(_said(error))  # run() adds what to check
    return None


def failure(error: re.Match[str], job: Job, usage: Usage | None) -> Failed:
    if reason := budget_spent(error.group(2)):
        return Failed(reason, usage)
    if error.group(1) in CONFIG_STATUSES or UNREACHABLE in error.group(2):
        return job.misconfigured(_said(error), "", usage)
    return Failed(_said(error), usage)


def _said(error: re.Match[str]) -> str:
    status = f" {error.group(1)}" if error.group(1) else ""
    return f"Qwen Code: API error{status}: {error.group(2)}"


def tokens(found: list[dict[str, Any]]) -> Usage | None:
    """Every model call's tokens: the `result` event's stats (background calls included), else the sum
    over the replies so far (a run stopped or cut short has no result). None if it reported none. Its
    prompt tokens count the cached ones, as the contract's do."""
    result = next((e for e in reversed(found) if e.get("type") == "result"), None)
    models = (result.get("stats") or {}).get("models") if result is not None else None
    if isinstance(models, dict) and models:
        counts = [model["tokens"] for model in models.values()
                  if isinstance(model, dict) and isinstance(model.get("tokens"), dict)]
        keys = ("prompt", "candidates", "cached")
    else:
        counts = [e["message"]["usage"] for e in found if e.get("type") == "assistant"
                  and isinstance(e.get("message"), dict) and isinstance(e["message"].get("usage"), dict)]
        keys = ("input_tokens", "output_tokens", "cache_read_input_tokens")
    if not counts:
        return None

    def total(key: str) -> int:
        return sum(value for count in counts if isinstance(value := count.get(key), int))

    return Usage(*(total(key) for key in keys))


def _undo_rewrite(workspace: Path, backup: Path, original: bytes) -> None:
    """Put back the repository's settings file Qwen Code rewrote at start. The sign is the backup it made
    of it, which holds the original (the model does not write that name)."""
    try:
        if backup.read_bytes() != original:
            return
    except OSError:
        return
    workspace.write_bytes(original)
    backup.unlink()


def _text(event: dict[str, Any]) -> str:
    """The text of an assistant event."""
    message = event.get("message")
    content = message.get("content") if isinstance(message, dict) else None
    if not isinstance(content, list):
        return ""
    return "".join(str(block.get("text") or "") for block in content
                   if isinstance(block, dict) and block.get("type") == "text")


def _last_text(found: list[dict[str, Any]]) -> str:
    """The main agent's last text (not a sub-agent's)."""
    replies = [e for e in found if e.get("type") == "assistant" and e.get("parent_tool_use_id") is None]
    return next((text for e in reversed(replies) if (text := _text(e))), "")
