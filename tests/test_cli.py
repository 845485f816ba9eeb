"""The command line as a person meets it: what the demo may touch, what `check` and a refused `start`
say and leave behind, and the small things (`-C` after the command, help lines, messages)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import yaml
from gitutil import git, on_the_branch, write
from swarmutil import SWARMD, run, swarm_repo

ONE_TASK = {"plan": {1: [{"title": "Write it", "work": {"write": {"it.txt": "it\n"}}}]}, "judge": {"stop_after": 1}}


def demo(folder: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*SWARMD, "demo", "--dir", str(folder)], capture_output=True, text=True, timeout=120,
                          stdin=subprocess.DEVNULL)


def test_the_demo_refuses_a_folder_that_is_not_empty_and_touches_nothing(repo_dir: Path, tmp_path: Path) -> None:
    (repo_dir / "README.md").write_text("my uncommitted edit\n")
    head, status = git(repo_dir, "rev-parse", "HEAD"), git(repo_dir, "status", "--porcelain")
    plain = tmp_path / "plain"  # not a repository
    write(plain, {"README.md": "mine\n"})
    for folder in (repo_dir, plain):
        before = {p: p.read_bytes() for p in folder.rglob("*") if p.is_file() and ".git" not in p.parts}
        proc = demo(folder)
        assert proc.returncode == 2, proc.stdout + proc.stderr
        [line] = proc.stderr.splitlines()
        assert line.startswith(f"swarmd: --dir {folder}: exists and is not an empty folder")
        after = {p: p.read_bytes() for p in folder.rglob("*") if p.is_file() and ".git" not in p.parts}
        assert after == before, "nothing in the folder changed"
    assert not (plain / ".git").exists(), "no repository was made there"
    assert git(repo_dir, "rev-parse", "HEAD") == head and git(repo_dir, "status", "--porcelain") == status
    assert "swarm/main" not in git(repo_dir, "branch", "--list", "swarm/main")
    a_file = tmp_path / "a-file"
    a_file.write_text("x")
    assert demo(a_file).returncode == 2 and a_file.read_text() == "x"


def test_check_reports_what_start_would_refuse(repo_dir: Path) -> None:
    init = run(repo_dir, "init")
    assert init.returncode == 0
    next_steps = init.stdout.split("Next:")[1]
    for step in ("agents.<role>.model", "api_key_env", "agents.<role>.command", "`swarmd check`",
                 "`swarmd start`", "`swarmd merge`"):
        assert step in next_steps, f"init's Next lines name {step}"
    proc = run(repo_dir, "check")
    assert proc.returncode == 2
    for role in ("planner", "worker", "judge"):
        assert f"field `agents.{role}.model`: not set; the built-in agent needs a litellm model" in proc.stderr
    config = repo_dir / ".swarm/config.yaml"
    config.write_text(yaml.safe_dump({"agents": {
        "planner": {"command": ["no-such-program-here"]},
        "worker": {"command": ["relative/agent.sh"]},
        "judge": {"command": [sys.executable]},
    }}))
    proc = run(repo_dir, "check")
    assert proc.returncode == 2
    assert "`agents.planner.command`: 'no-such-program-here' is not a program on PATH" in proc.stderr
    assert "`agents.worker.command`: 'relative/agent.sh' is a relative path" in proc.stderr
    assert "agents.judge" not in proc.stderr
    started = run(repo_dir, "start")
    assert started.returncode == 2 and started.stderr == proc.stderr, "start refuses exactly what check reports"


def empty_repo(tmp_path: Path) -> Path:
    """A repository with one empty commit on `main`."""
    repo_dir = tmp_path / "repo"
    repo_dir.mkdir()
    git(repo_dir, "init", "-q", "-b", "main")
    git(repo_dir, "commit", "-q", "--allow-empty", "-m", "first")
    return repo_dir


def test_init_with_a_model_sets_every_role_and_check_wants_its_key(tmp_path: Path) -> None:
    repo_dir = empty_repo(tmp_path)
    init = run(repo_dir, "init", "--model", "anthropic/claude-sonnet-4-5")
    assert init.returncode == 0, init.stderr
    assert "the built-in agent on anthropic/claude-sonnet-4-5 in every role" in init.stdout
    config = yaml.safe_load((repo_dir / ".swarm/config.yaml").read_text())
    assert {config["agents"][r]["model"] for r in ("planner", "worker", "judge")} == {"anthropic/claude-sonnet-4-5"}
    keyed = {"ANTHROPIC_API_KEY": "sk-ant-test-not-a-real-key"}
    assert run(repo_dir, "check", env=keyed).returncode == 0, "a model and the provider's usual key are enough"
    unkeyed = run(repo_dir, "check", env={"ANTHROPIC_API_KEY": ""})
    assert unkeyed.returncode == 2 and "set ANTHROPIC_API_KEY in the environment" in unkeyed.stderr, unkeyed.stderr
    config["agents"]["worker"]["api_key_env"] = "SWARMD_TEST_UNSET_KEY"
    (repo_dir / ".swarm/config.yaml").write_text(yaml.safe_dump(config))
    proc = run(repo_dir, "check", env=keyed)
    assert proc.returncode == 2
    assert "`agents.worker`: no key for https://api.anthropic.com/v1: set SWARMD_TEST_UNSET_KEY" in proc.stderr, proc.stderr
    again = run(repo_dir, "init", "--model", "openai/gpt-4.1")
    assert again.returncode == 2 and "set agents.<role>.model there" in again.stderr


def test_a_start_refused_for_an_invalid_tree_writes_nothing(tmp_path: Path) -> None:
    root = swarm_repo(tmp_path / "repo", ONE_TASK)
    with on_the_branch(root) as side:
        write(side, {".swarm/tasks/9.yaml": "id: 9\ntitle: bad\nkind: work\nparent: 4\n"})
    tip = git(root, "rev-parse", "swarm/main")
    for command in ("check", "start"):
        proc = run(root, command)
        assert proc.returncode == 2 and ".swarm/tasks/9.yaml: field `parent`" in proc.stderr, proc.stderr
    assert git(root, "rev-parse", "swarm/main") == tip, "no 'start cycle 1' commit"
    pool = root / ".git/swarm/pool"
    assert not pool.exists() or not list(pool.glob("wt-*")), "no pool slot was made or marked"
    assert not list((root / ".git/swarm").glob("agents/*.json")), "no agent was started"
    assert "swarm/main" not in git(root, "worktree", "list")


def test_dash_c_works_after_the_command_too(tmp_path: Path) -> None:
    root = swarm_repo(tmp_path / "repo", ONE_TASK)
    for args in (["-C", str(root), "status"], ["status", "-C", str(root)]):
        proc = subprocess.run([*SWARMD, *args], capture_output=True, text=True, cwd=tmp_path, stdin=subprocess.DEVNULL)
        assert proc.returncode == 0 and "not running" in proc.stdout, proc.stderr


def test_help_lines_are_whole_and_messages_do_not_stutter(tmp_path: Path) -> None:
    proc = subprocess.run([*SWARMD, "--help"], capture_output=True, text=True, env={"COLUMNS": "80", "PATH": ""})
    commands = proc.stdout.split("Commands:")[1]
    assert "..." not in commands and "…" not in commands, commands
    for name in ("init", "check", "start", "stop", "status", "tasks", "show", "log", "merge", "demo"):
        assert f"  {name} " in commands
    root = swarm_repo(tmp_path / "repo", {"plan": {1: [{"title": "Slow", "work": {"sleep": 30}}]}})
    assert run(root, "start", "--detach").returncode == 0
    try:
        again = run(root, "start")
        assert again.returncode == 2 and again.stderr.startswith("swarmd: already running in this repository (pid ")
    finally:
        assert run(root, "stop").returncode == 0


def test_init_with_an_agent_sets_every_role_and_check_wants_its_cli_and_key(tmp_path: Path) -> None:
    repo_dir = empty_repo(tmp_path)
    init = run(repo_dir, "init", "--agent", "codex")
    assert init.returncode == 0, init.stderr
    assert "codex in every role" in init.stdout and "gateway holds it" in init.stdout
    config = yaml.safe_load((repo_dir / ".swarm/config.yaml").read_text())
    assert {config["agents"][r]["backend"] for r in ("planner", "worker", "judge")} == {"codex"}
    assert config["budget"]["run"]["max_usd"] == 20, "a run budget by default"
    empty = tmp_path / "empty"
    empty.mkdir()
    proc = run(repo_dir, "check", env={"PATH": f"{empty}:/usr/bin:/bin", "OPENAI_API_KEY": ""})
    assert proc.returncode == 2
    assert "`agents.worker.executable`: 'codex' is not a program on PATH" in proc.stderr, proc.stderr
    assert "install Codex with `npm install -g @openai/codex`" in proc.stderr
    assert "`agents.worker`: no key for https://api.openai.com/v1: set OPENAI_API_KEY" in proc.stderr
    fake = tmp_path / "bin" / "codex"
    fake.parent.mkdir()
    fake.write_text("#!/bin/sh\n")
    fake.chmod(0o755)
    for role in ("planner", "worker", "judge"):
        config["agents"][role]["executable"] = str(fake)
    (repo_dir / ".swarm/config.yaml").write_text(yaml.safe_dump(config))
    assert run(repo_dir, "check", env={"OPENAI_API_KEY": "sk-test"}).returncode == 0
    config["agents"]["worker"]["env"] = ["OPENAI_API_KEY"]
    (repo_dir / ".swarm/config.yaml").write_text(yaml.safe_dump(config))
    proc = run(repo_dir, "check", env={"OPENAI_API_KEY": "sk-test"})
    assert proc.returncode == 2 and "`agents.worker.env`: OPENAI_API_KEY holds the key the gateway uses" in proc.stderr


def test_init_with_aider_wants_a_model(tmp_path: Path) -> None:
    repo_dir = empty_repo(tmp_path)
    proc = run(repo_dir, "init", "--agent", "aider")
    assert proc.returncode == 2 and "aider needs a model; add --model" in proc.stderr
    assert not (repo_dir / ".swarm").exists(), "refused before anything was written"
