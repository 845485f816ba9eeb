"""Exit status 78 (the agent contract's "my role is misconfigured"): the attempt does not count, the task
goes back to todo, the role pauses and the others go on; with nothing else to run swarmd stops and says
why. The misconfigured agents are bash scripts that follow the contract."""

from __future__ import annotations

from pathlib import Path

import yaml
from swarmutil import cycle, json_of, run, start, swarm_repo, tasks

TWO_TASKS = {"plan": {1: [{"title": "One", "work": {"write": {"one.txt": "1\n"}}},
                          {"title": "Two", "work": {"write": {"two.txt": "2\n"}}}]},
             "judge": {"stop_after": 1}}
REFUSED = ["bash", "-c", 'echo "calling the model"; echo "configuration error: the provider refused the key"; exit 78']


def test_a_misconfigured_worker_pauses_its_role_and_costs_no_attempt(tmp_path: Path) -> None:
    root = swarm_repo(tmp_path / "repo", TWO_TASKS, {"agents": {"worker": {"command": REFUSED}}})
    proc = run(root, "start")
    assert proc.returncode == 2, proc.stdout + proc.stderr
    said = proc.stdout + proc.stderr
    assert said.count("the worker role is paused: its role is misconfigured: configuration error: the provider "
                      "refused the key") == 1, "said once, however many workers hit it"
    assert "nothing else can run: the worker role is paused" in proc.stderr
    found = tasks(root)
    for task_id in ("1", "2"):
        assert found[task_id]["status"] == "todo"
        assert {a["outcome"] for a in found[task_id]["attempts"]} <= {"config"}
    assert any(found[t]["attempts"] for t in ("1", "2")), "a worker ran and was recorded"
    assert cycle(root, 1).get("verdict") is None, "a cycle whose work waits on a paused role is not judged"
    status = json_of(root, "status")
    assert status["paused"] == {"worker": "its role is misconfigured: configuration error: the provider refused the key"}

    # Fixed: the next start clears the pause, and the tasks run with all their attempts left.
    config = yaml.safe_load((root / ".swarm/config.yaml").read_text())
    config["agents"]["worker"]["command"] = config["agents"]["planner"]["command"]
    (root / ".swarm/config.yaml").write_text(yaml.safe_dump(config))
    start(root)
    assert {task_id: task["status"] for task_id, task in tasks(root).items()} == {"1": "done", "2": "done"}
    assert json_of(root, "status")["paused"] == {}


def test_a_misconfigured_judge_leaves_the_cycle_open(tmp_path: Path) -> None:
    root = swarm_repo(tmp_path / "repo", TWO_TASKS, {"agents": {"judge": {"command": REFUSED}}})
    proc = run(root, "start")
    assert proc.returncode == 2, proc.stdout + proc.stderr
    assert "the judge role is paused" in proc.stderr
    assert {t["status"] for t in tasks(root).values()} == {"done"}
    assert cycle(root, 1).get("verdict") is None
