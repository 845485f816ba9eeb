"""End to end: `swarmd start` as a real process on real repositories, with the scripted agent."""

from __future__ import annotations

from pathlib import Path

from gitutil import git
from swarmutil import cycle, json_of, run, start, swarm_repo, tasks

TWO_CYCLES = {
    "plan": {
        1: [
            {"title": "Write hello", "work": {"write": {"hello.txt": "hello\n"}, "summary": "wrote hello.txt",
                                              "usage": {"input_tokens": 100, "output_tokens": 20, "cost_usd": 0.01}}},
            {"title": "Greetings", "kind": "plan", "plan": [
                [{"title": "English", "work": {"write": {"greet/en.txt": "hi\n"}}},
                 {"title": "French", "needs": ["English"], "work": {"write": {"greet/fr.txt": "salut\n"}}}],
                [{"title": "German", "work": {"write": {"greet/de.txt": "hallo\n"}}}],
            ]},
        ],
        2: [{"title": "Write bye", "work": {"write": {"bye.txt": "bye\n"}, "leave": {"notes/bye.md": "forgot\n"}}}],
    },
    "judge": {"stop_after": 2},
}


def test_two_cycles_with_a_sub_planner_needs_and_the_judge(tmp_path: Path) -> None:
    root = swarm_repo(tmp_path / "repo", TWO_CYCLES)
    user_head = git(root, "rev-parse", "HEAD")
    out = start(root).stdout
    assert "closed cycle 1: continue" in out and "closed cycle 2: stop" in out

    found = tasks(root)
    assert {t: found[t]["status"] for t in found} == {
        "1": "done", "2": "done", "2.1": "done", "2.2": "done", "2.3": "done", "3": "done"
    }, "cycle 2's root planner continues the numbering"
    assert found["2.2"]["needs"] == ["2.1"]
    assert found["2.3"]["title"] == "German", "the sub-planner was woken for its second step"
    assert found["1"]["result"]["summary"] == "wrote hello.txt"
    assert found["1"]["result"]["usage"] == {"input_tokens": 100, "output_tokens": 20, "cached_tokens": 0,
                                             "cost_usd": 0.01}
    for path, text in {"hello.txt": "hello", "greet/fr.txt": "salut", "bye.txt": "bye"}.items():
        assert git(root, "show", f"swarm/main:{path}") == text
    assert git(root, "show", "swarm/main:notes/bye.md") == "forgot", "what a worker leaves is committed for it"
    assert "left uncommitted" in git(root, "log", "--format=%s", "swarm/main", "--", "notes/bye.md")

    first, second = cycle(root, 1), cycle(root, 2)
    assert (first["verdict"], second["verdict"]) == ("continue", "stop")
    assert first["usage"]["cost_usd"] == 0.01 and first["usage_by_role"]["worker"]["input_tokens"] == 100
    assert first["root"]["status"] == "done"
    subjects = git(root, "log", "--first-parent", "--format=%s", "swarm/main").splitlines()
    assert subjects[0] == "close cycle 2: stop" and "close cycle 1: continue" in subjects
    assert subjects.index("start cycle 2") < subjects.index("close cycle 1: continue")
    changed_at_start = git(root, "show", "--name-only", "--format=", ":/start cycle 2").splitlines()
    assert changed_at_start == [".swarm/cycles/0002.yaml"], "an unchanged goal is not rewritten"
    assert git(root, "show", "swarm/main:.swarm/goal.md") == (root / ".swarm/goal.md").read_text().strip()

    assert git(root, "rev-parse", "HEAD") == user_head
    assert git(root, "status", "--porcelain") == "?? .swarm/"
    assert not [b for b in git(root, "branch", "--list", "swarm/task/*").split() if b], "landed branches are gone"
    git(root, "fsck", "--strict", "--no-progress")


def test_inspection_commands(tmp_path: Path) -> None:
    root = swarm_repo(tmp_path / "repo", TWO_CYCLES)
    start(root)
    status = json_of(root, "status")
    assert status["daemon"]["running"] is False and status["cycle"]["number"] == 2
    assert status["tasks"] == {"done": 6} and status["usage"]["cost_usd"] == 0.01
    assert 0 < status["pool"]["worktrees"] <= status["pool"]["limit"] and status["pool"]["disk_bytes"] is None
    assert json_of(root, "status", "--disk")["pool"]["disk_bytes"] > 0
    listed = json_of(root, "tasks")
    assert [t["id"] for t in listed] == ["1", "2", "2.1", "2.2", "2.3", "3"]
    shown = json_of(root, "show", "2.2")
    assert shown["task"]["attempts"][0]["outcome"] == "landed"
    assert any("scripted worker for 2.2" in line for line in shown["log_tail"])
    log = json_of(root, "log")
    assert [(c["cycle"], c["verdict"], c["done"]) for c in log] == [(1, "continue", 5), (2, "stop", 1)], "per cycle"
    for command in ("status", "tasks", "show 2.2", "log"):
        proc = run(root, *command.split())
        assert proc.returncode == 0 and proc.stdout.strip(), command
    missing = run(root, "show", "9")
    assert missing.returncode == 2 and "no task '9'" in missing.stderr


def test_a_real_conflict_is_resolved_by_its_worker(tmp_path: Path) -> None:
    script = {"plan": {1: [
        {"title": "Usage", "work": {"write": {"README.md": "# project\n\nUsage: run it\n"}}},
        {"title": "Languages", "work": {
            "wait_for_landing": {"README.md": "Usage"}, "write": {"README.md": "# project\n\nLanguages: en\n"},
            "resolve": {"README.md": "# project\n\nUsage: run it\n\nLanguages: en\n"}}},
    ]}, "judge": {"stop_after": 1}}
    root = swarm_repo(tmp_path / "repo", script)
    out = start(root).stdout
    assert "conflict on 2 in README.md" in out
    task = tasks(root)["2"]
    assert [a["outcome"] for a in task["attempts"]] == ["conflict", "landed"]
    assert task["status"] == "done"
    assert git(root, "show", "swarm/main:README.md") == "# project\n\nUsage: run it\n\nLanguages: en"


def test_conflict_markers_go_back_to_their_worker_like_a_conflict(tmp_path: Path) -> None:
    markers = "<<<<<<< mine\nmine\n=======\ntheirs\n>>>>>>> theirs\n"
    script = {"plan": {1: [
        {"title": "Sloppy", "work": {"write": {"notes.txt": markers}, "resolve": {"notes.txt": "both\n"}}},
    ]}, "judge": {"stop_after": 1}}
    root = swarm_repo(tmp_path / "repo", script)
    out = start(root).stdout
    assert "conflict on 1 in notes.txt" in out
    task = tasks(root)["1"]
    assert [a["outcome"] for a in task["attempts"]] == ["conflict", "landed"]
    assert "conflict markers at a line start in notes.txt" in task["attempts"][0]["reason"]
    assert git(root, "show", "swarm/main:notes.txt") == "both"
    prompt = (root / ".git/swarm/runs/1/c1-a2/prompt.md").read_text()
    assert "lines that look like git's conflict markers" in prompt and "MERGE_HEAD" not in prompt
    landed = git(root, "log", "--first-parent", "--format=%H", "swarm/main").splitlines()
    assert all("<<<<<<<" not in git(root, "show", f"{c}:notes.txt") for c in landed
               if "notes.txt" in git(root, "ls-tree", "--name-only", c))


def test_ownership_violations_are_refused_and_counted(tmp_path: Path) -> None:
    script = {"plan": {1: [
        {"title": "Meddler", "work": {"write": {"x.txt": "x\n"}, "touch_plan": True}},
        {"title": "Area", "kind": "plan", "plan": [[{"title": "Not mine", "id": "7", "work": {}}]]},
    ]}, "judge": {"stop_after": 1}}
    root = swarm_repo(tmp_path / "repo", script, {"max_attempts": 2})
    start(root)
    found = tasks(root)
    assert found["1"]["status"] == "failed" and found["2"]["status"] == "failed"
    assert [a["outcome"] for a in found["1"]["attempts"]] == ["refused", "refused"]
    assert "a worker may not change .swarm/" in found["1"]["attempts"][0]["reason"]
    assert "'7' is not yours to create; your ids are 2.N" in found["2"]["attempts"][0]["reason"]
    assert "7" not in found
    assert git(root, "cat-file", "-t", "swarm/failed/1/c1-a1") == "commit", "a refused branch stays for inspection"
    assert "x.txt" not in git(root, "ls-tree", "--name-only", "swarm/main")


def test_a_failed_need_blocks_and_wakes_the_planner(tmp_path: Path) -> None:
    script = {"plan": {1: [
        {"title": "Breaks", "work": {"exit": 1}},
        {"title": "After it", "needs": ["Breaks"], "work": {"write": {"after.txt": "x\n"}}},
        {"title": "Fails once", "work": {"fail_before_attempt": 2, "write": {"ok.txt": "ok\n"}}},
    ]}, "judge": {"stop_after": 1}}
    root = swarm_repo(tmp_path / "repo", script, {"max_attempts": 2})
    out = start(root).stdout
    found = tasks(root)
    assert (found["1"]["status"], found["2"]["status"], found["3"]["status"]) == ("failed", "blocked", "done")
    assert [a["outcome"] for a in found["3"]["attempts"]] == ["failed", "landed"]
    assert "blocked 2" in out
    assert cycle(root, 1)["root"]["attempts"][-1]["outcome"] == "landed", "the root planner was woken again"
    assert cycle(root, 1)["tasks"] == {"blocked": 1, "done": 1, "failed": 1}


def test_a_runaway_agent_is_killed_with_its_whole_process_group(tmp_path: Path) -> None:
    marker = tmp_path / "child.pid"
    script = {"plan": {1: [{"title": "Hangs", "work": {"write": {"x.txt": "x\n"}}}]}, "judge": {"stop_after": 1}}
    root = swarm_repo(tmp_path / "repo", script, {
        "max_attempts": 1,
        "agents": {"worker": {"command": ["bash", "-c", f"sleep 300 & echo $! > {marker}; wait"], "timeout": 1}},
    })
    out = start(root).stdout
    assert "ran past its timeout" in out
    task = tasks(root)["1"]
    assert task["status"] == "failed" and task["attempts"][0]["outcome"] == "timeout"
    assert "agents.worker.timeout (1 s)" in task["attempts"][0]["reason"]
    child = int(marker.read_text())
    assert not Path(f"/proc/{child}").exists() or "Z" in Path(f"/proc/{child}/stat").read_text().split()[2]


def test_a_red_tip_becomes_a_fix_task_and_the_judge_sees_it(tmp_path: Path) -> None:
    script = {"plan": {1: [{"title": "Introduce a bug", "work": {"write": {"bug.txt": "bug\n"}}}]},
              "judge": {"stop_after": 1}}
    check = "if [ -e bug.txt ]; then echo 'FAILED: bug.txt is there'; exit 1; fi"
    root = swarm_repo(tmp_path / "repo", script, {"verify": {"command": ["bash", "-c", check]}, "max_attempts": 1})
    out = start(root).stdout
    assert "the tip is red" in out and "created a task to fix it" in out
    fix = tasks(root)["0.1"]
    assert fix["parent"] == "0" and fix["kind"] == "work"
    assert "FAILED: bug.txt is there" in fix["description"]
    assert cycle(root, 1)["red_s"] > 0
    prompt = next((root / ".git/swarm/runs/judge-root").glob("c1-a*/prompt.md")).read_text()
    assert "FAILED: bug.txt is there" in prompt


def test_one_daemon_per_repository(tmp_path: Path) -> None:
    script = {"plan": {1: [{"title": "Slow", "work": {"sleep": 30}}]}, "judge": {"stop_after": 1}}
    root = swarm_repo(tmp_path / "repo", script)
    proc = run(root, "start", "--detach")
    assert proc.returncode == 0, proc.stderr
    pid = int(proc.stdout.split("pid ")[1].split(")")[0])
    again = run(root, "start")
    assert again.returncode == 2 and f"already running in this repository (pid {pid})" in again.stderr
    assert json_of(root, "status")["daemon"] == {"running": True, "pid": pid}
    stopped = run(root, "stop")
    assert stopped.returncode == 0 and f"(pid {pid}) stopped" in stopped.stdout
    assert json_of(root, "status")["daemon"]["running"] is False
    found = tasks(root)
    assert all(t["status"] in ("todo", "done") for t in found.values()), "a stop leaves nothing running"
