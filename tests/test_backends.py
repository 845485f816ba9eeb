"""The backends with the real CLIs (Claude Code, Codex, aider, Qwen Code; installed by tests/clis.py, never
skipped), each run by its adapter as a worker in a real worktree under `.git/swarm/pool/`, against the
scripted model server behind a stand-in gateway URL (`/agent/<token>`): the edit lands in the worktree, the
result holds the final message and the usage the server reported, a 402 "swarmd: budget spent" stops the
run at once with that reason last, and a refused key exits 78."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from clis import InstallError, cli_path
from gitutil import git, write

from swarmd.daemon.results import read_result
from swarmd.tasks import Judgement, Result
from swarmd.testing import ScriptedModelServer

TOKEN = "test-token"
TASK = "Make notes.txt say alpha"
PROMPT = f"""You are a **worker** in a swarm of coding agents (cycle 1, attempt 1).

## Your task: 1: {TASK}
Change notes.txt so that it holds the single line `alpha`.

## When you are done
Write your handoff as YAML to the file named by `$SWARM_RESULT_FILE`: `summary` (what you did).
"""
BUDGET = "swarmd: budget spent: the worker's $1.00 is used up"
RUN_TIMEOUT = 300  # seconds for one adapter run; they take 1-15 s on a quiet machine


@dataclass
class Run:
    status: int
    log: str
    worktree: Path
    result_file: Path

    @property
    def last_line(self) -> str:
        return next((line for line in reversed(self.log.splitlines()) if line.strip()), "")

    def result(self) -> Result | None:
        return read_result(self.result_file, Result)


def run_adapter(tmp_path: Path, backend: str, server: ScriptedModelServer, files: dict[str, str] | None = None,
                role: str = "worker", prompt: str = PROMPT, **settings: Any) -> Run:
    """The adapter as the daemon would start it: in the worktree, in a session of its own, with the
    contract's variables, the settings file, stdin closed and its output to the log."""
    root = tmp_path / "repo"
    root.mkdir()
    git(root, "init", "-q", "-b", "main")
    write(root, {"notes.txt": "base\n", "README.md": "A test project.\n", **(files or {})})
    git(root, "add", "-A")
    git(root, "commit", "-q", "-m", "first")
    worktree = root / ".git/swarm/pool/wt-1"
    git(root, "worktree", "add", "-q", "-b", "swarm/task/1", str(worktree))
    base = git(root, "rev-parse", "HEAD")
    run_dir = root / ".git/swarm/runs/1/c1-a1"
    run_dir.mkdir(parents=True)
    (run_dir / "prompt.md").write_text(prompt)
    (run_dir / "settings.json").write_text(json.dumps({
        "backend": backend, "model": "scripted-model", "max_steps": 10, "own_login": False,
        "timeout": RUN_TIMEOUT, "retries": 1, "price": None,
        "executable": settings.pop("executable", None) or str(cli_path(backend)), **settings}))
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith("SWARM_")},
        "SWARM_ROLE": role, "SWARM_TASK_ID": "1", "SWARM_CYCLE": "1", "SWARM_ATTEMPT": "1",
        "SWARM_PROMPT_FILE": str(run_dir / "prompt.md"), "SWARM_RESULT_FILE": str(run_dir / "result.yaml"),
        "SWARM_AGENT_SETTINGS": str(run_dir / "settings.json"), "SWARM_BASE": base,
        "SWARM_INTEGRATION_BRANCH": "swarm/main", "SWARM_TASK_FILE": str(worktree / ".swarm/tasks/1.yaml"),
        "SWARM_GATEWAY_URL": f"{server.base_url}/agent/{TOKEN}", "SWARM_GATEWAY_TOKEN": TOKEN,
    }
    log = run_dir / "agent.log"
    with open(log, "wb") as out:
        proc = subprocess.Popen([sys.executable, "-P", "-m", "swarmd.backends", backend], cwd=worktree, env=env,
                                stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT,
                                start_new_session=True)
        try:
            status = proc.wait(timeout=RUN_TIMEOUT)
        finally:
            try:
                os.killpg(proc.pid, signal.SIGKILL)  # as the daemon does: nothing it started outlives it
            except ProcessLookupError:
                pass
            proc.wait()
    return Run(status, log.read_text(errors="replace"), worktree,
               run_dir / "result.yaml")


def budget_error() -> dict[str, Any]:
    return {"status": 402, "type": "budget_spent", "code": "budget_spent", "message": BUDGET}


def check_done(run: Run, server: ScriptedModelServer, summary: str, usage: dict[str, int]) -> None:
    assert run.status == 0, run.log
    assert (run.worktree / "notes.txt").read_text() == "alpha\n", run.log
    result = run.result()
    assert result is not None and summary in result.summary, run.log
    assert result.usage is not None
    assert result.usage.model_dump(exclude={"cost_usd"}) == {"cached_tokens": 0, **usage}, run.log
    assert run.last_line.startswith("swarmd ") and "finished" in run.last_line
    assert server.failures == [], server.failures
    posts = [r for r in server.requests if r.method == "POST"]
    assert {r.path.split("/v1/")[0] for r in posts} == {f"/agent/{TOKEN}"}, "the base URL's path is kept"
    assert {r.headers.get("x-api-key") or r.headers["authorization"].removeprefix("Bearer ") for r in posts} == {TOKEN}
    changed = git(run.worktree, "status", "--porcelain", "--ignored", "--untracked-files=all").splitlines()
    assert [line.split()[-1] for line in changed] == ["notes.txt"], "nothing of the CLI's own is left in the worktree"


def check_budget_stop(run: Run, server: ScriptedModelServer) -> None:
    assert run.status not in (0, 78), run.log
    assert BUDGET in run.last_line, run.log
    # Stopped at the first 402 (one more may slip in while it is stopped), not retried: aider would retry for a
    # minute (9 more), Codex `retries` times per layer of its own.
    assert [r.status for r in server.requests if r.method == "POST"].count(402) <= 2, "stopped, not retried"
    result = run.result()
    assert result is not None and BUDGET in result.summary


def check_refused_key(run: Run, server: ScriptedModelServer) -> None:
    assert run.status == 78, run.log
    assert "the API key sent does not match" in run.last_line, run.log  # the server's reason, passed on
    assert "check agents.worker.model" in run.last_line, "and what to do about it"
    assert [r.status for r in server.requests if r.method == "POST"].count(401) <= 2, "retries = 1, or stopped"


# --- Claude Code: Anthropic messages, streamed, with tools ---

# The edit, and a handoff of its own in the result file (the prompt names it by its variable).
EDIT_AND_HAND_OFF = ("printf 'alpha\\n' > notes.txt && printf 'summary: Its own handoff.\\nconcerns: [Just a test]\\n' "
                     "> \"$SWARM_RESULT_FILE\"")


def claude_script(second: dict[str, Any]) -> dict[str, Any]:
    return {"match": TASK, "replies": [
        {"tool_calls": [{"name": "Bash", "arguments": {"command": EDIT_AND_HAND_OFF, "description": "Edit"}}],
         "usage": {"input_tokens": 1000, "output_tokens": 50, "cached_tokens": 200}},
        second,
    ]}


def test_claude_code_edits_and_reports_its_usage(tmp_path: Path) -> None:
    final = {"text": "notes.txt now says alpha.", "usage": {"input_tokens": 1200, "output_tokens": 20}}
    with ScriptedModelServer(claude_script(final)) as server:
        run = run_adapter(tmp_path, "claude-code", server)
    check_done(run, server, "Its own handoff.", {"input_tokens": 2200, "output_tokens": 70, "cached_tokens": 200})
    result = run.result()
    assert result is not None and result.usage is not None
    assert result.concerns == ["Just a test"], "the handoff it wrote is kept, with the usage it reported"
    assert result.usage.cost_usd is not None  # Claude Code's own estimate: the role sets no price


def test_claude_code_stops_when_the_budget_is_spent(tmp_path: Path) -> None:
    with ScriptedModelServer(claude_script({"text": "never", "errors": [budget_error()]})) as server:
        run = run_adapter(tmp_path, "claude-code", server)
    check_budget_stop(run, server)
    result = run.result()
    assert result is not None and result.usage is not None and result.usage.output_tokens == 50


def test_claude_code_with_a_refused_key_exits_78(tmp_path: Path) -> None:
    with ScriptedModelServer(claude_script({"text": "never"}), api_key="another-token") as server:
        run = run_adapter(tmp_path, "claude-code", server)
    check_refused_key(run, server)


def test_a_judge_whose_final_message_is_its_verdict(tmp_path: Path) -> None:
    verdict = "Here is my verdict.\n\n```yaml\nverdict: stop\nsummary: The goal is met.\n```\n"
    with ScriptedModelServer({"replies": [{"text": verdict}]}) as server:
        run = run_adapter(tmp_path, "claude-code", server, role="judge")
    assert run.status == 0, run.log
    judgement = read_result(run.result_file, Judgement)
    assert judgement is not None and judgement.verdict == "stop" and judgement.summary == "The goal is met."
    assert judgement.usage is not None and judgement.usage.output_tokens > 0


# --- Codex: OpenAI Responses API, streamed ---

def codex_script(second: dict[str, Any]) -> dict[str, Any]:
    # No `match`: Codex's first user message is its own (the environment), the prompt comes second.
    return {"replies": [
        {"tool_calls": [{"name": "exec_command", "arguments": {"cmd": "printf 'alpha\\n' > notes.txt"}}],
         "expect": {"contains": TASK}, "usage": {"input_tokens": 1000, "output_tokens": 50, "cached_tokens": 200}},
        second,
    ]}


def test_codex_edits_and_reports_its_usage(tmp_path: Path) -> None:
    final = {"text": "notes.txt now says alpha.", "usage": {"input_tokens": 1200, "output_tokens": 20}}
    price = {"input": 1.0, "output": 2.0, "cached_input": 0.5}  # US dollars per million tokens
    with ScriptedModelServer(codex_script(final)) as server:
        run = run_adapter(tmp_path, "codex", server, price=price)
    check_done(run, server, "notes.txt now says alpha.",
               {"input_tokens": 2200, "output_tokens": 70, "cached_tokens": 200})
    result = run.result()
    assert result is not None and result.usage is not None
    assert result.usage.cost_usd == pytest.approx((2000 * 1.0 + 200 * 0.5 + 70 * 2.0) / 1e6)


def test_codex_stops_when_the_budget_is_spent(tmp_path: Path) -> None:
    with ScriptedModelServer(codex_script({"text": "never", "errors": [budget_error()] * 5})) as server:
        run = run_adapter(tmp_path, "codex", server, retries=4)
    check_budget_stop(run, server)


def test_codex_with_a_refused_key_exits_78(tmp_path: Path) -> None:
    with ScriptedModelServer(codex_script({"text": "never"}), api_key="another-token") as server:
        run = run_adapter(tmp_path, "codex", server)
    check_refused_key(run, server)


# --- aider: OpenAI chat completions, no tools: edits are text in its "whole" format ---

# aider's first request already holds 4 assistant turns of its own: an example conversation, then "Ok"
# to the repository map and to the files it added to the chat (notes.txt, which the prompt names).
PREAMBLE = [{"text": "never asked for"}] * 4
ASK_FOR_A_FILE = {"text": "To keep its wording I need to see README.md.", "expect": {"contains": TASK},
                  "usage": {"input_tokens": 1000, "output_tokens": 30}}  # aider adds it, and asks again


def aider_script(second: dict[str, Any]) -> dict[str, Any]:
    # No `match`: aider's opening is its example conversation; the prompt comes after it.
    return {"replies": [*PREAMBLE, ASK_FOR_A_FILE, second]}


def test_aider_edits_and_reports_its_usage(tmp_path: Path) -> None:
    final = {"text": "notes.txt now says alpha.\n\nnotes.txt\n```\nalpha\n```\n",
             "usage": {"input_tokens": 1200, "output_tokens": 20}, "expect": {"last_contains": "README.md"}}
    # aider loads a repository's .env over its environment: the token must still be the key it sends.
    dotenv = {".env": "OPENAI_API_KEY=sk-from-dotenv\nOPENAI_API_BASE=http://127.0.0.1:9/v1\n"}
    with ScriptedModelServer(aider_script(final)) as server:
        run = run_adapter(tmp_path, "aider", server, files=dotenv)
    check_done(run, server, "notes.txt now says alpha.", {"input_tokens": 2200, "output_tokens": 50})
    result = run.result()
    assert result is not None and "Applied edit to notes.txt" in result.summary
    assert "```" not in result.summary, "the files it wrote out whole are left out of the summary"


def test_aider_stops_when_the_budget_is_spent(tmp_path: Path) -> None:
    with ScriptedModelServer(aider_script({"text": "never", "errors": [budget_error()] * 9})) as server:
        run = run_adapter(tmp_path, "aider", server)
    check_budget_stop(run, server)
    result = run.result()
    assert result is not None and result.usage is not None and result.usage.input_tokens == 1000


def test_aider_with_a_refused_key_exits_78(tmp_path: Path) -> None:
    with ScriptedModelServer(aider_script({"text": "never"}), api_key="another-token") as server:
        run = run_adapter(tmp_path, "aider", server)
    check_refused_key(run, server)


# --- Qwen Code: OpenAI chat completions, streamed, with tools of its own ---

# Its first request already holds an assistant turn of its own ("Got it. Thanks for the context!", after
# the environment it describes in the first user message): the prompt comes second.
QWEN_PREAMBLE = {"text": "never asked for"}
# A repository set up for Qwen Code of its own: a provider for the same model name, a key and a base URL
# in its settings and its .env. The gateway must stay the only way out, with the token as the key.
QWEN_REPOSITORY = {
    ".qwen/settings.json": json.dumps({
        "modelProviders": {"openai": [{"id": "scripted-model", "name": "elsewhere", "envKey": "ELSEWHERE_KEY",
                                       "baseUrl": "http://127.0.0.1:9/v1"}]},
        "model": {"name": "another-model"},
        "security": {"auth": {"apiKey": "sk-from-settings", "baseUrl": "http://127.0.0.1:9/v1"}}}),
    ".env": "OPENAI_API_KEY=sk-from-dotenv\nOPENAI_BASE_URL=http://127.0.0.1:9/v1\nELSEWHERE_KEY=sk-elsewhere\n",
}


def qwen_script(second: dict[str, Any]) -> dict[str, Any]:
    # No `match`: its opening is the environment it describes; the prompt comes after it.
    return {"replies": [
        QWEN_PREAMBLE,
        {"tool_calls": [{"name": "run_shell_command", "arguments": {"command": "printf 'alpha\\n' > notes.txt",
                                                                    "description": "Edit"}}],
         "expect": {"last_contains": TASK}, "usage": {"input_tokens": 1000, "output_tokens": 50, "cached_tokens": 200}},
        second,
    ]}


def test_qwen_code_edits_and_reports_its_usage(tmp_path: Path) -> None:
    final = {"text": "notes.txt now says alpha.", "usage": {"input_tokens": 1200, "output_tokens": 20},
             "expect": {"tool_result_contains": "Exit Code: 0"}}
    price = {"input": 1.0, "output": 2.0, "cached_input": 0.5}  # US dollars per million tokens
    with ScriptedModelServer(qwen_script(final)) as server:
        run = run_adapter(tmp_path, "qwen-code", server, files=QWEN_REPOSITORY, price=price)
    check_done(run, server, "notes.txt now says alpha.",
               {"input_tokens": 2200, "output_tokens": 70, "cached_tokens": 200})
    result = run.result()
    assert result is not None and result.usage is not None
    assert result.usage.cost_usd == pytest.approx((2000 * 1.0 + 200 * 0.5 + 70 * 2.0) / 1e6)
    assert {r.body["model"] for r in server.requests if r.method == "POST"} == {"scripted-model"}
    home = tmp_path / "repo/.git/swarm/runs/1/c1-a1/qwen-home"
    assert home.is_dir(), "its own files went to the run folder"
    assert not (Path(os.environ["HOME"]) / ".qwen").exists(), "and none to HOME"


def test_qwen_code_stops_when_the_budget_is_spent(tmp_path: Path) -> None:
    with ScriptedModelServer(qwen_script({"text": "never", "errors": [budget_error()] * 5})) as server:
        run = run_adapter(tmp_path, "qwen-code", server)
    check_budget_stop(run, server)
    result = run.result()
    assert result is not None and result.usage is not None and result.usage.output_tokens == 50


def test_qwen_code_with_a_refused_key_exits_78(tmp_path: Path) -> None:
    with ScriptedModelServer(qwen_script({"text": "never"}), api_key="another-token") as server:
        run = run_adapter(tmp_path, "qwen-code", server)
    check_refused_key(run, server)


def test_qwen_code_takes_a_prompt_past_the_argument_limit(tmp_path: Path) -> None:
    long = PROMPT + "\n## Notes\n" + "A line of notes that goes on.\n" * 6000 + "The end of the notes.\n"  # 180 KB
    read_it_all = {"text": "Read it all.", "expect": {"last_contains": "The end of the notes."}}
    script = {"replies": [QWEN_PREAMBLE, read_it_all]}
    with ScriptedModelServer(script) as server:
        run = run_adapter(tmp_path, "qwen-code", server, prompt=long)
    assert len(long.encode()) > 128 * 1024  # one argument to exec may hold no more
    assert run.status == 0, run.log
    assert server.failures == [], server.failures


def test_qwen_code_past_max_steps_fails_saying_so(tmp_path: Path) -> None:
    with ScriptedModelServer(qwen_script({"text": "never"})) as server:
        run = run_adapter(tmp_path, "qwen-code", server, max_steps=1)
    assert run.status == 1, run.log
    assert "Qwen Code used all 1 turns (agents.worker.max_steps)" in run.last_line, run.log
    assert [r.status for r in server.requests if r.method == "POST"] == [200]
    result = run.result()
    assert result is not None and result.usage is not None and result.usage.output_tokens == 50


@pytest.mark.parametrize("backend", ["claude-code", "codex", "aider", "qwen-code"])
def test_a_missing_cli_exits_78_saying_how_to_install_it(tmp_path: Path, backend: str) -> None:
    with ScriptedModelServer({"replies": [{"text": "never"}]}) as server:
        run = run_adapter(tmp_path, backend, server, executable=str(tmp_path / "nowhere" / "cli"))
    assert run.status == 78, run.log
    assert "install it with `" in run.last_line and "agents.worker.executable" in run.last_line
    assert server.requests == []


@pytest.mark.parametrize(("backend", "advice"), [
    ("claude-code", "claude login"), ("codex", "codex login"), ("aider", "own_login to false"),
    ("qwen-code", "own_login to false")])
def test_own_login_without_a_login_exits_78_saying_what_to_do(tmp_path: Path, backend: str, advice: str) -> None:
    with ScriptedModelServer({"replies": [{"text": "never"}]}) as server:
        run = run_adapter(tmp_path, backend, server, own_login=True)
    assert run.status == 78, run.log
    assert advice in run.last_line, run.last_line
    assert [r for r in server.requests if r.method == "POST"] == []


def test_a_cli_that_cannot_be_installed_says_which_command_failed(tmp_path: Path,
                                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PATH", str(tmp_path / "empty"))  # no npm
    with pytest.raises(InstallError, match=r"cannot install codex 0\.171\.0: npm not found; install Node\.js"):
        cli_path("codex", cache=tmp_path / "cache")
    assert not (tmp_path / "cache" / "codex-0.171.0").exists()
    assert list((tmp_path / "cache").glob(".build-*")) == [], "a failed install leaves nothing behind"
