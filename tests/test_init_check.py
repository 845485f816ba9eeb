"""`swarmd init` and `swarmd check` through the CLI, on real repositories."""

from __future__ import annotations

import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest
from click.testing import CliRunner
from gitutil import git, on_the_branch, write
from swarmutil import run

from swarmd.cli import cli
from swarmd.layout import MAX_FILE_BYTES


@dataclass
class Ran:
    returncode: int
    stdout: str
    stderr: str


def swarmd(cwd: Path, *args: str) -> Ran:
    """The CLI in-process (fast); `test_the_command_runs_as_a_process` covers the real executable."""
    result = CliRunner().invoke(cli, ["-C", str(cwd), *args], catch_exceptions=False)
    return Ran(result.exit_code, result.stdout, result.stderr)


def test_the_command_runs_as_a_process(repo_dir: Path) -> None:
    ok = subprocess.run([sys.executable, "-m", "swarmd", "init"], cwd=repo_dir, capture_output=True, text=True)
    assert ok.returncode == 0 and "created" in ok.stdout
    (repo_dir / ".swarm/config.yaml").write_text("limits: {workers: zero}\n")
    bad = subprocess.run([str(Path(sys.executable).with_name("swarmd")), "check"], cwd=repo_dir / "src", capture_output=True, text=True)
    assert bad.returncode == 2 and "Traceback" not in bad.stderr
    assert bad.stderr.startswith("swarmd: .swarm/config.yaml: field `limits.workers`")


def snapshot(root: Path) -> dict[str, str]:
    """What a user would see of their repository: HEAD, branches, index and status."""
    return {
        "head": git(root, "rev-parse", "HEAD"),
        "symbolic": git(root, "symbolic-ref", "-q", "HEAD"),
        "branches": git(root, "for-each-ref", "refs/heads/", "--format=%(refname) %(objectname)"),
        "index": git(root, "ls-files", "-s"),
        "status": git(root, "status", "--porcelain", "--untracked-files=all"),
    }


def test_init_creates_the_files_the_branch_and_nothing_else(repo_dir: Path) -> None:
    before = snapshot(repo_dir)
    proc = swarmd(repo_dir, "init", "--goal", "Make the app greet in French")
    assert proc.returncode == 0, proc.stderr
    assert "created branch swarm/main" in proc.stdout

    assert (repo_dir / ".swarm/goal.md").read_text() == "Make the app greet in French\n"
    config = (repo_dir / ".swarm/config.yaml").read_text()
    assert "branch: swarm/main" in config and "# " in config
    assert (repo_dir / ".git/swarm").is_dir()

    after = snapshot(repo_dir)
    assert after["head"] == before["head"] and after["symbolic"] == before["symbolic"]
    assert after["index"] == before["index"]
    assert after["status"] == "?? .swarm/config.yaml\n?? .swarm/goal.md"
    main_line = f"refs/heads/main {before['head']}"
    assert main_line in after["branches"]

    # one commit on top of HEAD, adding only the goal's copy
    assert git(repo_dir, "rev-parse", "swarm/main~1") == before["head"]
    assert git(repo_dir, "diff", "--name-only", "main", "swarm/main") == ".swarm/goal.md"
    assert git(repo_dir, "show", "swarm/main:.swarm/goal.md") == "Make the app greet in French"


def test_second_init_changes_nothing_and_says_so(repo_dir: Path) -> None:
    assert swarmd(repo_dir, "init").returncode == 0
    before = snapshot(repo_dir), (repo_dir / ".swarm/config.yaml").read_text()
    proc = swarmd(repo_dir, "init")
    assert proc.returncode == 0
    assert "nothing changed" in proc.stdout
    assert (snapshot(repo_dir), (repo_dir / ".swarm/config.yaml").read_text()) == before


def test_init_completes_what_an_interrupted_init_left(repo_dir: Path) -> None:
    assert swarmd(repo_dir, "init", "--goal", "G").returncode == 0
    (repo_dir / ".swarm/goal.md").unlink()
    proc = swarmd(repo_dir, "init")
    assert proc.returncode == 0 and "goal.md" in proc.stdout
    assert (repo_dir / ".swarm/goal.md").read_text() == "G\n"  # taken back from the branch's copy


def name_agents(root: Path) -> None:
    """Name a command for every role in the config `init` wrote, as its Next lines ask (what `check` and
    `start` refuse without)."""
    config = root / ".swarm/config.yaml"
    text = config.read_text()
    for role in ("planner", "worker", "judge"):
        text = text.replace(f"  {role}:\n    backend: builtin\n    command: null", f"  {role}:\n    backend: builtin\n    command: [{sys.executable}]")
    config.write_text(text)


def test_init_with_a_custom_branch_writes_it_in_the_config(repo_dir: Path) -> None:
    assert swarmd(repo_dir, "init", "--branch", "agents/integration").returncode == 0
    assert "branch: agents/integration" in (repo_dir / ".swarm/config.yaml").read_text()
    name_agents(repo_dir)
    assert swarmd(repo_dir, "check").returncode == 0


def test_init_works_from_a_subfolder_and_on_a_detached_head(repo_dir: Path) -> None:
    git(repo_dir, "checkout", "-q", "--detach")
    proc = swarmd(repo_dir / "src", "init")
    assert proc.returncode == 0, proc.stderr
    assert (repo_dir / ".swarm/config.yaml").exists()


def assert_refused(proc: Ran, *words: str) -> None:
    assert proc.returncode == 2, (proc.stdout, proc.stderr)
    assert "Traceback" not in proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert lines, "an error must say something"
    for word in words:
        assert word in proc.stderr, proc.stderr


def test_init_outside_a_repository(tmp_path: Path) -> None:
    assert_refused(swarmd(tmp_path, "init"), str(tmp_path), "not inside a git repository")
    assert list(tmp_path.iterdir()) == []


def test_init_in_a_bare_repository(tmp_path: Path) -> None:
    git(tmp_path, "init", "-q", "--bare", "bare.git")
    assert_refused(swarmd(tmp_path / "bare.git", "init"), "bare repository")
    assert not (tmp_path / "bare.git/swarm").exists()


def test_init_in_a_repository_without_commits(tmp_path: Path) -> None:
    git(tmp_path, "init", "-q")
    assert_refused(swarmd(tmp_path, "init"), "no commits")
    assert not (tmp_path / ".swarm").exists() and not (tmp_path / ".git/swarm").exists()


def test_init_refuses_a_branch_swarmd_did_not_create(repo_dir: Path) -> None:
    git(repo_dir, "branch", "feature")
    before = snapshot(repo_dir)
    assert_refused(swarmd(repo_dir, "init", "--branch", "feature"), "'feature'", "not created by swarmd")
    assert snapshot(repo_dir) == before
    assert not (repo_dir / ".swarm").exists() and not (repo_dir / ".git/swarm").exists()


def test_init_refuses_the_checked_out_branch_and_bad_names(repo_dir: Path) -> None:
    assert_refused(swarmd(repo_dir, "init", "--branch", "main"), "'main'", "checked out")
    assert_refused(swarmd(repo_dir, "init", "--branch", "bad..name"), "'bad..name'", "not a valid branch name")
    assert not (repo_dir / ".swarm").exists()


def test_init_refuses_a_malformed_config_and_writes_nothing(repo_dir: Path) -> None:
    write(repo_dir, {".swarm/config.yaml": "limits: [1, 2\n"})
    assert_refused(swarmd(repo_dir, "init"), ".swarm/config.yaml", "line")
    assert not (repo_dir / ".swarm/goal.md").exists()
    assert git(repo_dir, "branch", "--list", "swarm/main") == ""


def test_check_summarises_a_valid_tree(repo_dir: Path) -> None:
    swarmd(repo_dir, "init")
    name_agents(repo_dir)
    proc = swarmd(repo_dir, "check")
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.startswith("ok: ") and "0 tasks at swarm/main" in proc.stdout


def test_check_before_init(repo_dir: Path) -> None:
    assert_refused(swarmd(repo_dir, "check"), ".swarm/config.yaml", "swarmd init")


@pytest.mark.parametrize(
    ("config", "words"),
    [
        ("limits: {workers: [\n", ["not valid YAML", "line"]),
        ("agents:\n  worker:\n    timeout: soon\n", ["`agents.worker.timeout`", "'soon'"]),
        ("limits:\n  wrokers: 3\n", ["`limits.wrokers`", "unknown key"]),
        ("max_attempts: -1\n", ["`max_attempts`", "-1"]),
        ("integration:\n  style: squash\n", ["`integration.style`", "'squash'"]),
        ("- just\n- a list\n", ["expected a mapping"]),
        ("agents:\n  worker:\n    command: \"unclosed 'quote\"\n    timeout: 5\n", ["`agents.worker.command`"]),
    ],
)
def test_check_names_the_bad_config_field(repo_dir: Path, config: str, words: list[str]) -> None:
    swarmd(repo_dir, "init")
    (repo_dir / ".swarm/config.yaml").write_text(config)
    assert_refused(swarmd(repo_dir, "check"), ".swarm/config.yaml", *words)


def commit_tasks(root: Path, files: dict[str, str]) -> None:
    """Put task files on the integration branch: a commit on it."""
    with on_the_branch(root) as worktree:
        write(worktree, {f".swarm/tasks/{name}": text for name, text in files.items()})


GOOD = {
    "1.yaml": "id: 1\ntitle: Plan it\nkind: plan\nstatus: todo\nparent: null\nneeds: []\n",
    "1.1.yaml": "id: 1.1\ntitle: Do it\nkind: work\nstatus: todo\nparent: 1\nneeds: []\n",
    "1.10.yaml": "id: 1.10\ntitle: Then this\nkind: work\nstatus: todo\nparent: 1\nneeds: [1.1]\n",
}


def test_check_reads_planner_written_tasks(repo_dir: Path) -> None:
    swarmd(repo_dir, "init")
    name_agents(repo_dir)
    commit_tasks(repo_dir, GOOD)
    proc = swarmd(repo_dir, "check")
    assert proc.returncode == 0, proc.stderr
    assert "3 tasks" in proc.stdout and "3 todo" in proc.stdout


@pytest.mark.parametrize(
    ("name", "text", "words"),
    [
        ("2.yaml", "id: 2\ntitle: x\nkind: work\nparent: null\nneeds: [\n", ["2.yaml", "not valid YAML"]),
        ("2.yaml", "id: 2\ntitle: x\nkind: chore\nparent: null\n", ["2.yaml", "`kind`", "'chore'"]),
        ("2.yaml", "id: 2\ntitle: x\nkind: work\nstatus: doing\nparent: null\n", ["2.yaml", "`status`", "'doing'"]),
        ("2.1.yaml", "id: 2.1\ntitle: x\nkind: work\nparent: 1\n", ["2.1.yaml", "`parent`", "outside its parent"]),
        ("2.yaml", "id: 2\ntitle: x\nkind: work\nparent: null\nneeds: [7]\n", ["2.yaml", "`needs[0]`", "'7'"]),
        ("2.yaml", "id: 3\ntitle: x\nkind: work\nparent: null\n", ["2.yaml", "`id`", "3.yaml"]),
        ("2.yaml", "id: 2\ntitle: x\nkind: work\nparent: null\ncolour: red\n", ["2.yaml", "`colour`"]),
        ("0.yaml", "id: 0\ntitle: x\nkind: work\nparent: null\n", ["0.yaml", "reserved"]),
        ("1.1.1.yaml", "id: 1.1.1\ntitle: x\nkind: work\nparent: 1.1\n", ["1.1.1.yaml", "work task"]),
        ("2.yaml", "id: 2\ntitle: yes\nkind: work\nparent: null\nneeds: 1.1\n", ["2.yaml", "`needs`", "'1.1'"]),
    ],
)
def test_check_names_the_bad_task_field(repo_dir: Path, name: str, text: str, words: list[str]) -> None:
    swarmd(repo_dir, "init")
    commit_tasks(repo_dir, {**GOOD, name: text})
    assert_refused(swarmd(repo_dir, "check"), f".swarm/tasks/{name}", *words)


def test_check_refuses_tasks_past_the_depth_limit_and_bad_cycle_records(repo_dir: Path) -> None:
    swarmd(repo_dir, "init")
    (repo_dir / ".swarm/config.yaml").write_text("limits:\n  depth: 1\n")
    commit_tasks(repo_dir, {**GOOD, "../cycles/0001.yaml": "number: 1\nverdict: maybe\nsummary: s\n"})
    proc = swarmd(repo_dir, "check")
    assert_refused(proc, ".swarm/tasks/1.1.yaml: field `id`", "past `limits.depth` (1)", ".swarm/cycles/0001.yaml")
    assert "`verdict`" in proc.stderr


def test_init_refuses_a_branch_name_that_clashes_with_a_branch(repo_dir: Path) -> None:
    assert_refused(swarmd(repo_dir, "init", "--branch", "main/swarm"), "'main/swarm'", "clashes with the existing 'main'")
    assert not (repo_dir / ".swarm").exists()


@pytest.mark.parametrize("name", ["swarm", "swarm/task/x", "swarm/failed/1"])
def test_init_refuses_the_branches_swarmd_keeps_for_agents(repo_dir: Path, name: str) -> None:
    assert_refused(swarmd(repo_dir, "init", "--branch", name), repr(name), "agents' branches")


def test_init_refuses_a_branch_checked_out_in_another_worktree(repo_dir: Path) -> None:
    git(repo_dir, "worktree", "add", "-q", "-b", "elsewhere", str(repo_dir.parent / "other"))
    assert_refused(swarmd(repo_dir, "init", "--branch", "elsewhere"), "'elsewhere'", "checked out in")


def test_check_finds_a_needs_loop(repo_dir: Path) -> None:
    swarmd(repo_dir, "init")
    name_agents(repo_dir)
    loop = {
        "5.yaml": "id: 5\ntitle: a\nkind: work\nparent: null\nneeds: [6]\n",
        "6.yaml": "id: 6\ntitle: b\nkind: work\nparent: null\nneeds: [7]\n",
        "7.yaml": "id: 7\ntitle: c\nkind: work\nparent: null\nneeds: [5]\n",
    }
    commit_tasks(repo_dir, {**GOOD, **loop})
    proc = swarmd(repo_dir, "check")
    assert_refused(proc, "loop", "5 -> 6 -> 7 -> 5")
    assert len(proc.stderr.strip().splitlines()) == 1


def test_check_reports_every_problem_one_line_each(repo_dir: Path) -> None:
    swarmd(repo_dir, "init")
    name_agents(repo_dir)
    commit_tasks(repo_dir, {
        **GOOD,
        "2.yaml": "id: 2\ntitle: x\nkind: chore\nparent: null\n",
        "3.yaml": "id: 3\ntitle: x\nkind: work\nparent: null\nneeds: [9]\n",
    })
    proc = swarmd(repo_dir, "check")
    assert_refused(proc, "2.yaml", "3.yaml")
    assert len(proc.stderr.strip().splitlines()) == 2


@pytest.mark.parametrize("command", ["check", "start", "status"])
def test_a_config_that_is_not_utf8_is_named_with_the_byte(repo_dir: Path, command: str) -> None:
    assert run(repo_dir, "init").returncode == 0
    data = b"limits:\n  workers: 3  # caf\xe9\n"
    (repo_dir / ".swarm/config.yaml").write_bytes(data)
    proc = run(repo_dir, command, timeout=60)
    assert proc.returncode == 2 and "Traceback" not in proc.stderr, proc.stderr
    assert proc.stderr.strip() == (
        f"swarmd: .swarm/config.yaml: line 2: not UTF-8: byte 0xe9 at offset {data.index(0xE9)}; save the file as UTF-8"
    )


def test_yaml_errors_without_a_line_have_no_empty_field(repo_dir: Path) -> None:
    assert run(repo_dir, "init").returncode == 0
    (repo_dir / ".swarm/config.yaml").write_bytes(b"limits:\n  workers: 3\x07\n")
    proc = run(repo_dir, "check")
    assert proc.returncode == 2
    assert proc.stderr.startswith("swarmd: .swarm/config.yaml: line 2: not valid YAML: "), proc.stderr
    assert "::" not in proc.stderr


def ready(root: Path, config: str = "") -> Path:
    """`swarmd init` done, and a config naming a command for every role (what `check` asks for first),
    followed by `config`."""
    assert run(root, "init").returncode == 0
    agents = "".join(f"  {role}:\n    command: [{sys.executable}]\n" for role in ("planner", "worker", "judge"))
    (root / ".swarm/config.yaml").write_text(f"agents:\n{agents}{config}")
    return root


@pytest.mark.parametrize(
    ("config", "timeouts"),
    [
        ("agents:\n  planner:\n    command: [CMD]\n  worker:\n    command: CMD\n  judge:\n    command: [CMD]\n",
         (1800, 3600, 900)),
        ("agents:\n  planner: {command: [CMD]}\n  worker: {command: [CMD], timeout: 7}\n  judge: {command: [CMD]}\n",
         (1800, 7, 900)),
        ("limits:\nagents:\n  planner: {command: [CMD]}\n  worker: {command: [CMD]}\n  judge: {command: [CMD]}\n",
         (1800, 3600, 900)),
    ],
)
def test_a_role_without_timeout_takes_its_default(repo_dir: Path, config: str, timeouts: tuple[int, ...]) -> None:
    assert run(repo_dir, "init").returncode == 0
    (repo_dir / ".swarm/config.yaml").write_text(config.replace("CMD", sys.executable))
    proc = run(repo_dir, "check")
    assert proc.returncode == 0, proc.stderr
    from swarmd.config import load_config

    agents = load_config(repo_dir).agents
    assert (agents.planner.timeout, agents.worker.timeout, agents.judge.timeout) == timeouts


@pytest.mark.parametrize(
    ("config", "field", "value"),
    [
        ("max_attempts: true\n", "max_attempts", "True"),
        ("limits:\n  workers: 2.0\n", "limits.workers", "2.0"),
        ("limits:\n  depth: false\n", "limits.depth", "False"),
        ("pool:\n  keep_ignored: true\nmax_attempts: 1.5\n", "max_attempts", "1.5"),
    ],
)
def test_a_bool_or_float_where_a_whole_number_belongs_is_refused(
    repo_dir: Path, config: str, field: str, value: str
) -> None:
    ready(repo_dir, config)
    proc = run(repo_dir, "check")
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    assert proc.stderr.startswith(f"swarmd: .swarm/config.yaml: field `{field}`: ") and f"(got {value})" in proc.stderr


@pytest.mark.parametrize(("value", "shown"), [("true", "True"), (".inf", "inf"), ("'60'", "'60'")])
def test_seconds_must_be_a_finite_number(repo_dir: Path, value: str, shown: str) -> None:
    assert run(repo_dir, "init").returncode == 0
    (repo_dir / ".swarm/config.yaml").write_text(f"agents:\n  worker:\n    command: [w]\n    timeout: {value}\n")
    proc = run(repo_dir, "check")
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    assert proc.stderr.startswith("swarmd: .swarm/config.yaml: field `agents.worker.timeout`: ")
    assert f"(got {shown})" in proc.stderr


def _symlink(worktree: Path) -> None:
    (worktree / ".swarm/tasks/9.yaml").symlink_to("/etc/passwd")


def _folder(worktree: Path) -> None:
    write(worktree, {".swarm/tasks/9.yaml/1.yaml": GOOD["1.yaml"]})


def _submodule(worktree: Path) -> None:
    inner = worktree / ".swarm/tasks/9.yaml"
    inner.mkdir()
    git(inner, "init", "-q")
    git(inner, "commit", "-q", "--allow-empty", "-m", "inner")


def _bad_bytes(worktree: Path) -> None:
    (worktree / ".swarm/tasks/9.yaml").write_bytes(b"id: 9\ntitle: caf\xe9\nkind: work\nparent: null\n")


def _too_big(worktree: Path) -> None:
    (worktree / ".swarm/tasks/9.yaml").write_bytes(b"id: 9\ntitle: big\nkind: work\nparent: null\n".ljust(MAX_FILE_BYTES + 1, b"#"))


@pytest.mark.parametrize(
    ("make", "problem"),
    [
        (_symlink, "a symlink; a task file must be a regular file"),
        (_folder, "a folder; a task file must be a regular file"),
        (_submodule, "a submodule; a task file must be a regular file"),
        (_bad_bytes, "line 2: not UTF-8: byte 0xe9 at offset 16; save the file as UTF-8"),
        (_too_big, f"{MAX_FILE_BYTES + 1:,} bytes, over the 1,048,576-byte limit for a task file"),
    ],
)
def test_check_refuses_a_task_entry_that_is_not_a_readable_file(repo_dir: Path, make, problem: str) -> None:  # type: ignore[no-untyped-def]
    ready(repo_dir)
    commit_tasks(repo_dir, GOOD)
    with on_the_branch(repo_dir) as worktree:
        make(worktree)
    proc = run(repo_dir, "check")
    assert proc.returncode == 2 and "Traceback" not in proc.stderr, proc.stderr
    assert proc.stderr.strip() == f"swarmd: .swarm/tasks/9.yaml: {problem}"


def test_check_refuses_a_symlinked_or_oversized_cycle_record(repo_dir: Path) -> None:
    ready(repo_dir)
    with on_the_branch(repo_dir) as worktree:
        (worktree / ".swarm/cycles").mkdir(parents=True)
        (worktree / ".swarm/cycles/0001.yaml").symlink_to("/etc/passwd")
        (worktree / ".swarm/cycles/0002.yaml").write_bytes(b"number: 2\n".ljust(MAX_FILE_BYTES + 1, b"#"))
    proc = run(repo_dir, "check")
    assert proc.returncode == 2 and "Traceback" not in proc.stderr, proc.stderr
    assert proc.stderr.strip().splitlines() == [
        "swarmd: .swarm/cycles/0001.yaml: a symlink; a cycle record must be a regular file",
        f"swarmd: .swarm/cycles/0002.yaml: {MAX_FILE_BYTES + 1:,} bytes, over the 1,048,576-byte limit for a cycle record",
    ]
