"""A scripted agent that follows the agent contract and acts only on what its prompt says.

It has no model: it reads ```swarm-script``` YAML blocks in its prompt (put there by the goal, and by the
task descriptions it writes as a planner) and does what they say. `swarmd demo` and the tests use it.

    plan:                       # in the goal: what the root planner creates, per cycle
      1: [<task>, ...]
    judge: {stop_after: 2}      # in the goal: the judge's verdict
    <task>: {title, kind: work|plan, needs: [titles], acceptance, id (instead of the next free one),
             work: {write: {path: text}, append: {path: text}, delete: [path], sleep: s,
                    leave: {path: text},  # written after its commit, left for swarmd to commit
                    wait_for_landing: {path: text},  # first wait until the integration branch has landed
                                                     # `text` in `path` (orders two workers by an event)
                    fail_before_attempt: n, exit: code, touch_plan: true,
                    resolve: {path: text}, summary: text, usage: {...}},
             plan: [[<task>, ...], [<task>, ...]]}   # a plan task's steps, one per planner run
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import yaml

BLOCK = re.compile(r"```swarm-script\n(.*?)```", re.DOTALL)
IDENTITY = {
    "GIT_AUTHOR_NAME": "scripted agent",
    "GIT_AUTHOR_EMAIL": "agent@swarmd.invalid",
    "GIT_COMMITTER_NAME": "scripted agent",
    "GIT_COMMITTER_EMAIL": "agent@swarmd.invalid",
}


def main() -> int:
    prompt = Path(os.environ["SWARM_PROMPT_FILE"]).read_text(encoding="utf-8")
    role = os.environ["SWARM_ROLE"]
    print(f"scripted {role} for {os.environ['SWARM_TASK_ID']}, attempt {os.environ['SWARM_ATTEMPT']}", flush=True)
    if role == "planner":
        return plan(prompt)
    if role == "worker":
        return work(prompt)
    return judge(prompt)


def section(prompt: str, heading: str) -> str:
    """The text of the prompt section whose heading starts with `heading`, up to the next heading."""
    match = re.search(rf"^## {re.escape(heading)}.*?$(.*?)(?=^## |\Z)", prompt, re.MULTILINE | re.DOTALL)
    return match.group(1) if match else ""


def script(prompt: str, heading: str) -> dict[str, Any]:
    """The first swarm-script block after the prompt's heading `## <heading>`; {} if there is none."""
    start = re.search(rf"^## {re.escape(heading)}", prompt, re.MULTILINE)
    block = BLOCK.search(prompt, start.end()) if start else None
    return (yaml.safe_load(block.group(1)) or {}) if block else {}


def plan(prompt: str) -> int:
    cycle = int(os.environ["SWARM_CYCLE"])
    if os.environ["SWARM_TASK_ID"] != "root":
        steps = script(prompt, "Your plan task").get("plan", [])
    else:
        steps = [script(prompt, "The goal").get("plan", {}).get(cycle, [])]
    listing = re.findall(r"^- (\S+) \[\w+, \w+\] (.+?)(?: \(needs [^)]*\))?$", section(prompt, "The plan so far"), re.MULTILINE)
    existing = dict(listing)
    titles = {title: task_id for task_id, title in existing.items()}
    step = next((s for s in steps if any(t["title"] not in titles for t in s)), [])
    ids = re.search(r"Use ids\s+(\S+),", prompt)
    next_id = ids.group(1) if ids else "1"
    prefix, _, number = next_id.rpartition(".")
    created = []
    for n, spec in enumerate(t for t in step if t["title"] not in titles):
        task_id = str(spec.get("id") or (f"{prefix}.{int(number) + n}" if prefix else str(int(number) + n)))
        titles[spec["title"]] = task_id
        created.append((task_id, spec))
    parent = os.environ["SWARM_TASK_ID"]
    for task_id, spec in created:
        body = {k: v for k, v in spec.items() if k in ("work", "plan")}
        task = {
            "id": task_id, "title": spec["title"], "kind": spec.get("kind", "work"), "status": "todo",
            "parent": None if parent == "root" else parent, "needs": [titles[t] for t in spec.get("needs", [])],
            "description": spec.get("description", spec["title"]) + "\n\n```swarm-script\n" + yaml.safe_dump(body) + "```\n",
        }
        if "acceptance" in spec:
            task["acceptance"] = spec["acceptance"]
        path = Path(".swarm/tasks") / f"{task_id}.yaml"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(yaml.safe_dump(task, sort_keys=False), encoding="utf-8")
    if created:
        commit(f"plan {parent}: {', '.join(t for t, _ in created)}")
    summary = f"created {', '.join(t for t, _ in created)}" if created else "nothing left to plan"
    write_result({"summary": summary})
    return 0


def work(prompt: str) -> int:
    spec = script(prompt, "Your task").get("work", {})
    attempt = int(os.environ["SWARM_ATTEMPT"])
    if os.environ.get("SWARM_CONFLICT") == "1":
        conflicted = re.findall(r"^- (.+)$", section(prompt, "First: resolve a merge conflict"), re.MULTILINE)
        for path in conflicted:
            Path(path).write_text(spec.get("resolve", {}).get(path, "resolved\n"), encoding="utf-8")
        commit(f"resolve the conflict in {', '.join(conflicted)}")
        write_result({"summary": f"resolved the conflict in {', '.join(conflicted)}"})
        return 0
    for path, text in spec.get("wait_for_landing", {}).items():
        wait_for_landing(path, text)
    time.sleep(float(spec.get("sleep", 0)))
    if attempt < int(spec.get("fail_before_attempt", 0)):
        print(f"failing attempt {attempt} on purpose", flush=True)
        return 1
    for path, text in spec.get("write", {}).items():
        Path(path).parent.mkdir(parents=True, exist_ok=True)
        Path(path).write_text(text, encoding="utf-8")
    for path, text in spec.get("append", {}).items():
        with open(path, "a", encoding="utf-8") as handle:
            handle.write(text)
    for path in spec.get("delete", []):
        Path(path).unlink()
    if spec.get("touch_plan"):
        task_file = Path(os.environ["SWARM_TASK_FILE"])
        task_file.write_text(task_file.read_text() + "# a worker should not do this\n", encoding="utf-8")
    commit(spec.get("summary", f"work on {os.environ['SWARM_TASK_ID']}"))
    for path, text in spec.get("leave", {}).items():
        Path(path).parent.mkdir(parents=True, exist_ok=True)
        Path(path).write_text(text, encoding="utf-8")
    write_result({"summary": spec.get("summary", "done"), **({"usage": spec["usage"]} if "usage" in spec else {})})
    return int(spec.get("exit", 0))


def wait_for_landing(path: str, text: str) -> None:
    """Block until `path` on the integration branch holds `text`; the agent's timeout bounds the wait."""
    ref = f"{os.environ['SWARM_INTEGRATION_BRANCH']}:{path}"
    while text not in subprocess.run(["git", "show", ref], capture_output=True, text=True).stdout:
        time.sleep(0.05)


def judge(prompt: str) -> int:
    rules = script(prompt, "The goal").get("judge", {})
    cycle = int(os.environ["SWARM_CYCLE"])
    stop = cycle >= int(rules.get("stop_after", 1))
    write_result({
        "verdict": "stop" if stop else "continue",
        "summary": f"cycle {cycle} reviewed: " + ("the goal is met" if stop else "more to do"),
        "notes": [] if stop else [f"cycle {cycle + 1}: carry on with the plan"],
    })
    return 0


def commit(message: str) -> None:
    env = {**os.environ, **IDENTITY}
    subprocess.run(["git", "add", "-A"], check=True, env=env)
    if subprocess.run(["git", "diff", "--cached", "--quiet"], env=env).returncode != 0:
        subprocess.run(["git", "commit", "-q", "-m", message], check=True, env=env)


def write_result(data: dict[str, Any]) -> None:
    Path(os.environ["SWARM_RESULT_FILE"]).write_text(yaml.safe_dump(data, sort_keys=False), encoding="utf-8")


if __name__ == "__main__":
    sys.exit(main())
