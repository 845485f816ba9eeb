"""aider (PyPI aider-chat; give it a virtual environment of its own) as a swarmd agent.

    aider --model openai/M --openai-api-base $SWARM_GATEWAY_URL/v1 --config RUN/aider.conf.yml
          --model-metadata-file RUN/aider.model.json --message-file PROMPT --yes-always --no-stream
          --no-auto-commits --no-dirty-commits --no-gitignore --no-detect-urls --no-check-update
          --no-analytics --no-show-model-warnings --no-show-release-notes --no-pretty --no-fancy-input
          --chat-history-file RUN/aider.chat.history.md --input-history-file RUN/aider.input.history
          --analytics-log RUN/aider.events.jsonl

- One message from the prompt file, then it exits. It talks OpenAI chat completions to the gateway: the
  model is `openai/<model>`, without the setting's provider (the gateway routes by it). The token goes in
  a config file of the run, not on the command line or in the environment: aider loads `.env` files of
  the repository and HOME over its environment, but its options win over them.
- Its own files go to the run folder; its repository map's cache (`.aider.tags.cache.v*`, which it can
  only keep in the repository) is removed from the worktree when it exits. It leaves its edits
  uncommitted (swarmd commits them) and never touches `.gitignore`.
- The model metadata file names the model (with `context_window`, `max_tokens` and `price` when the role
  sets them), so aider does not download litellm's price list.
- aider exits 0 whatever happened: a run without a `message_send` event in its analytics log (which
  holds the tokens of each reply) failed. It retries a 402 for a minute, so the adapter stops it on the
  gateway's "swarmd: budget spent"; a refused key (401, 403) or an unknown model (404) exits 78.
"""

from __future__ import annotations

import json
import os
import re
import shutil
from pathlib import Path
from typing import Any

from swarmd.backends import process
from swarmd.backends.common import UNREACHABLE, Failed, Job, Misconfigured, Report, Usage, budget_spent

TITLE = "aider"
COMMAND = "aider"  # looked up on PATH unless agents.<role>.executable names it
INSTALL = "pipx install aider-chat"
CACHE = ".aider.tags.cache.v*"  # its repository map's cache, which it keeps in the repository
QUIET = ["--yes-always", "--no-stream", "--no-auto-commits", "--no-dirty-commits", "--no-gitignore",
         "--no-detect-urls", "--no-check-update", "--no-analytics", "--no-show-model-warnings",
         "--no-show-release-notes", "--no-pretty", "--no-fancy-input"]
# How litellm's exceptions show in aider's output; a 401 litellm took for a bad request says "key".
ERROR = re.compile(r"litellm\.(\w+Error)\b")
CONFIG_ERRORS = {"AuthenticationError", "PermissionDeniedError", "NotFoundError"}
KEY_REFUSED = re.compile(r"api.?key|unauthori[sz]ed|forbidden|authenticat", re.IGNORECASE)


def run(job: Job) -> Report:
    url, token = job.gateway()
    if job.own_login:
        raise Misconfigured(f"aider has no login of its own: set agents.{job.role}.own_login to false")
    if job.model is None:
        raise Misconfigured(f"aider needs a model: set agents.{job.role}.model, e.g. openai/gpt-4.1")
    model = f"openai/{job.model}"  # litellm's OpenAI path, to the gateway
    files = {name: job.run_dir / f"aider.{name}" for name in
             ("conf.yml", "model.json", "chat.history.md", "input.history", "events.jsonl")}
    _write_private(files["conf.yml"], json.dumps({"openai-api-key": token}) + "\n")  # JSON is YAML
    files["model.json"].write_text(json.dumps({model: metadata(job)}), encoding="utf-8")
    files["events.jsonl"].unlink(missing_ok=True)
    argv = [job.executable(COMMAND, INSTALL), "--model", model, "--openai-api-base", f"{url}/v1",
            "--config", str(files["conf.yml"]), "--model-metadata-file", str(files["model.json"]),
            "--message-file", str(job.prompt_file), *QUIET,
            "--chat-history-file", str(files["chat.history.md"]),
            "--input-history-file", str(files["input.history"]), "--analytics-log", str(files["events.jsonl"])]
    env = job.env({"LITELLM_LOCAL_MODEL_COST_MAP": "True", "COLUMNS": "1000"},  # no wrapped error lines
                  drop=["OPENAI_API_KEY", "OPENAI_API_BASE", "OPENAI_BASE_URL"])
    caches = set(job.worktree.glob(CACHE))
    try:
        ran = process.run(argv, cwd=job.worktree, env=env, watch=watch)
    finally:
        for cache in set(job.worktree.glob(CACHE)) - caches:
            shutil.rmtree(cache, ignore_errors=True)
    sent = events(files["events.jsonl"], "message_send")
    usage = job.priced(Usage(input_tokens=sum(_count(e, "prompt_tokens") for e in sent),
                             output_tokens=sum(_count(e, "completion_tokens") for e in sent)))
    if isinstance(ran.stopped, Misconfigured):
        raise job.misconfigured(str(ran.stopped), "", usage)
    if ran.stopped is not None:
        raise Failed(str(ran.stopped), usage)
    if ran.status != 0 or not sent:
        errors = [line for line in ran.lines() if ERROR.search(line)]
        said = errors[-1] if errors else ran.last_line() or "nothing"
        said = f"aider exited {ran.status} without a reply from the model; it said: {said}"
        raise job.misconfigured(said, "", usage) if UNREACHABLE in said else Failed(said, usage)
    return Report(summary(files["chat.history.md"].read_text(encoding="utf-8", errors="replace"), ran.lines()),
                  usage)


def watch(line: str) -> Failed | None:
    """Stop aider at the first error it would retry for nothing (a spent budget) or that says the role is
    misconfigured."""
    reason = budget_spent(line)
    if reason is not None:
        return Failed(reason)
    kind = error.group(1) if (error := ERROR.search(line)) else None
    if kind in CONFIG_ERRORS or (kind == "BadRequestError" and KEY_REFUSED.search(line)):
        return Misconfigured(f"aider: {line.strip()}")  # run() adds what to check
    return None


def metadata(job: Job) -> dict[str, Any]:
    """What aider and litellm should know of the model (without it, aider fetches litellm's list)."""
    info: dict[str, Any] = {"litellm_provider": "openai", "mode": "chat"}
    if job.setting("context_window"):
        info["max_input_tokens"] = job.setting("context_window")
    if job.setting("max_tokens"):
        info["max_output_tokens"] = job.setting("max_tokens")
    price = job.setting("price")
    if price:
        cached = price.get("cached_input")
        info.update(input_cost_per_token=price["input"] / 1e6, output_cost_per_token=price["output"] / 1e6,
                    cache_read_input_token_cost=(price["input"] if cached is None else cached) / 1e6)
    return info


def events(path: Path, name: str) -> list[dict[str, Any]]:
    """The properties of each `name` event in aider's analytics log."""
    found = []
    try:
        lines = path.read_text(encoding="utf-8", errors="replace").splitlines()
    except FileNotFoundError:
        return []
    for line in lines:
        try:
            event = json.loads(line)
        except ValueError:
            continue
        if isinstance(event, dict) and event.get("event") == name and isinstance(event.get("properties"), dict):
            found.append(event["properties"])
    return found


def summary(history: str, output: list[str]) -> str:
    """The model's last reply from the chat history (after the prompt, its `####` lines; aider's own
    lines there start with `>`), without the files it wrote out whole; then the edits aider applied."""
    lines = history.splitlines()
    prompt = max((n for n, line in enumerate(lines) if line.startswith("####")), default=-1)
    replies, reply = [], []
    for line in lines[prompt + 1:] + [">"]:
        if line.startswith(">"):
            replies.append("\n".join(reply))
            reply = []
        else:
            reply.append(line)
    whole_files = re.compile(r"^[^\n]*\n```.*?^```[ \t]*$", re.MULTILINE | re.DOTALL)  # a name, then a fence
    texts = [whole_files.sub("", text).strip() for text in replies]
    last = next((text for text in reversed(texts) if text), "")
    applied = [line.strip() for line in output if line.startswith("Applied edit to ")]
    return "\n".join([re.sub(r"\n{3,}", "\n\n", last), *applied]).strip()


def _count(event: dict[str, Any], key: str) -> int:
    value = event.get(key)
    return value if isinstance(value, int) else 0


def _write_private(path: Path, text: str) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as file:
        file.write(text)
