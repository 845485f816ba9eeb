"""The agent scripts every design runs, and the environment they read.

Every design runs the same bash worker, so the designs differ only in how they hand out tasks and land the
work; swarmd also needs a root planner and a judge, which do next to nothing.
"""

from __future__ import annotations

from pathlib import Path

from gitcmd import ENV

# The one agent script every design runs. $EPOCHREALTIME needs no fork; `times` (in this shell, not a
# subshell) gives the CPU of the script and of what it ran, so the daemon's own git commands can be told
# apart from the agents' in the daemon's RUSAGE_CHILDREN.
WORKER_SH = r"""#!/usr/bin/env bash
# swarmd benchmark worker: sleep, change one file, commit, exit 0.
set -e
export LC_ALL=C
start=$EPOCHREALTIME
export GIT_AUTHOR_NAME="Bench Worker" GIT_AUTHOR_EMAIL=worker@example.com
export GIT_COMMITTER_NAME="Bench Worker" GIT_COMMITTER_EMAIL=worker@example.com
sleep "$BENCH_SLEEP"
mkdir -p work
printf 'task %s, attempt %s\n' "$SWARM_TASK_ID" "${SWARM_ATTEMPT:-1}" > "work/$SWARM_TASK_ID.txt"
git add "work/$SWARM_TASK_ID.txt"
git commit -q --no-verify -m "work on task $SWARM_TASK_ID"
end=$EPOCHREALTIME
out="$BENCH_TIMES/$SWARM_TASK_ID.${SWARM_ATTEMPT:-1}"
{ echo "$SWARM_TASK_ID ${SWARM_ATTEMPT:-1} $start $end"; times; } > "$out.tmp"
mv "$out.tmp" "$out"
exit 0
"""
PLANNER_SH = """#!/usr/bin/env bash
# swarmd benchmark root planner: the tasks are already on the integration branch; add nothing.
exit 0
"""
JUDGE_SH = """#!/usr/bin/env bash
# swarmd benchmark judge: one cycle is the whole run.
printf 'verdict: stop\\nsummary: benchmark cycle done\\n' > "$SWARM_RESULT_FILE"
exit 0
"""


def write_scripts(folder: Path) -> dict[str, Path]:
    folder.mkdir(parents=True, exist_ok=True)
    scripts = {}
    for name, text in (("worker", WORKER_SH), ("planner", PLANNER_SH), ("judge", JUDGE_SH)):
        path = folder / f"{name}.sh"
        path.write_text(text)
        path.chmod(0o755)
        scripts[name] = path
    return scripts


def worker_env(sleep: float, times: Path) -> dict[str, str]:
    """The environment of a run's processes: no GIT_* variables, and what the worker script reads (how long
    to sleep, where to write its record)."""
    return {**ENV, "BENCH_SLEEP": f"{sleep:g}", "BENCH_TIMES": str(times)}
