"""What becomes of an attempt when its agent exits: `exits.judge` over plain facts, and result files read
as untrusted input (real files of every kind an agent can leave)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from swarmd import store
from swarmd.daemon.exits import ExitFacts, judge
from swarmd.daemon.outcomes import Conflicted, Landed, NotLanded
from swarmd.daemon.results import BadResult, read_result
from swarmd.errors import ValidationError
from swarmd.layout import MAX_FILE_BYTES
from swarmd.tasks import Judgement, Outcome, Result, Role


def facts(**changes: object) -> ExitFacts:
    base: dict[str, object] = dict(role=Role.WORKER, branch="swarm/task/1", exit_code=0, timed_out=False,
                                   timeout=60.0, log_file=Path("/log"), max_attempts=3)
    return ExitFacts(**{**base, **changes})  # type: ignore[arg-type]


def never() -> Landed:
    raise AssertionError("landing must not be tried")


@pytest.mark.parametrize(("changes", "outcome", "words"), [
    ({"timed_out": True, "exit_code": -9}, Outcome.TIMEOUT, "ran past agents.worker.timeout (60 s)"),
    ({"exit_code": 3, "moved": "HEAD moved to the branch x"}, Outcome.FAILED, "exited with status 3; its log is /log"),
    ({"exit_code": 1, "said": "used all 5 steps"}, Outcome.FAILED, "exited with status 1 (used all 5 steps); its log is /log"),
    ({"exit_code": 78, "said": "the provider refused the key"}, Outcome.CONFIG,
     "its role is misconfigured: the provider refused the key"),
    ({"moved": "HEAD moved to the branch x"}, Outcome.FAILED, "HEAD moved to the branch x instead of staying on its branch swarm/task/1"),
    ({"commit_error": "GitError: boom"}, Outcome.FAILED, "could not be committed: GitError: boom"),
    ({"bad_result": "/r.yaml: a FIFO"}, Outcome.FAILED, "/r.yaml: a FIFO"),
])
def test_what_is_known_up_front_decides_without_landing(changes: dict[str, object], outcome: Outcome, words: str) -> None:
    judged = judge(facts(**changes), never)
    assert isinstance(judged, NotLanded) and judged.outcome is outcome and words in judged.reason


def test_a_clean_exit_lands_and_conflicts_go_back_to_the_worker_a_few_times() -> None:
    assert judge(facts(), lambda: Landed("abc")) == Landed("abc")
    conflict = Conflicted(("README.md",), "conflicts in README.md")
    assert judge(facts(conflicts_in_a_row=2), lambda: conflict) == conflict
    refused = judge(facts(conflicts_in_a_row=3), lambda: conflict)
    assert isinstance(refused, NotLanded) and refused.outcome is Outcome.REFUSED and "3 times in a row" in refused.reason
    planner = judge(facts(role=Role.PLANNER), lambda: conflict)
    assert isinstance(planner, NotLanded) and "plans again from the new tip" in planner.reason


def test_a_good_result_and_no_result(tmp_path: Path) -> None:
    path = tmp_path / "result.yaml"
    assert read_result(path, Result) is None
    path.write_text("")
    assert read_result(path, Result) is None
    path.write_text("summary: did it\nnotes: [one]\n")
    assert read_result(path, Result) == Result(summary="did it", notes=["one"])
    path.write_text("verdict: stop\nsummary: done\n")
    assert read_result(path, Judgement) is not None


def bad(path: Path, model: type = Result) -> str:
    with pytest.raises(BadResult) as caught:
        read_result(path, model)
    assert str(path) in str(caught.value), "the reason names the file"
    return str(caught.value)


def test_every_kind_of_bad_result_is_a_reason_not_a_crash(tmp_path: Path) -> None:
    path = tmp_path / "result.yaml"
    path.write_bytes(b"summary: caf\xe9\n")
    assert "not UTF-8" in bad(path)
    path.write_bytes(b"a" * (MAX_FILE_BYTES + 1))
    assert f"{MAX_FILE_BYTES:,}-byte limit" in bad(path)
    path.write_text("summary: [1, 2]\n")
    assert "field `summary`" in bad(path)
    path.write_text("- a list\n")
    assert "expected a mapping" in bad(path)
    path.write_text("summary: x\nextra: 1\n")
    assert "unknown key" in bad(path)
    path.write_text("verdict: maybe\nsummary: x\n")
    assert "field `verdict`" in bad(path, Judgement)
    path.write_text("summary: [" * 5000)
    bad(path)
    path.write_text("summary: &a " + "x" * 10_000 + "\nnotes: [" + ", ".join(["*a"] * 2000) + "]\n")
    assert "expands to far more than its own size" in bad(path), "20 MB from an 18 kB file"
    nested = "".join(f"l{i}: &l{i} [" + ", ".join([f"*l{i - 1}" if i else "x"] * 10) + "]\n" for i in range(9))
    path.write_text(nested + "summary: 1\n")
    assert "expands to far more than its own size" in bad(path), "10**9 items from 400 bytes"
    path.unlink()
    path.mkdir()
    assert "a folder, not a regular file" in bad(path)
    path.rmdir()
    path.symlink_to("/etc/passwd")
    assert "a symlink" in bad(path)
    path.unlink()
    os.mkfifo(path)
    assert "a FIFO, not a regular file" in bad(path), "a FIFO with no writer must not hang the daemon"


def test_a_task_file_that_expands_through_aliases_is_refused() -> None:
    text = "id: '1'\ntitle: &t " + "x" * 10_000 + "\nkind: work\nparent: null\nneeds: [" + ", ".join(["*t"] * 500) + "]\n"
    with pytest.raises(ValidationError, match="expands to far more than its own size"):
        store.parse_task(text.encode(), ".swarm/tasks/1.yaml")
