"""The names of the branches swarmd makes for its agents, and how a branch that did not land is kept."""

from __future__ import annotations

from swarmd.git.repo import Repo
from swarmd.tasks import ROOT


def agent_branch(task_id: str, cycle: int) -> str:
    """A planner's or worker's branch: `swarm/task/<id>`, or `swarm/root/<cycle>` for a root planner."""
    return f"swarm/root/{cycle}" if task_id == ROOT else f"swarm/task/{task_id}"


def judge_branch(cycle: int) -> str:
    return f"swarm/judge/{cycle}"


def keep_branch(repo: Repo, task_id: str, cycle: int | None, attempt: int, branch: str, why: str) -> None:
    """Move a branch that did not land out of the way of the next attempt, keeping its commits under
    `swarm/<why>/<task>/c<cycle>-a<attempt>`, with `-2`, `-3`, ... when that name is taken."""
    if repo.branch_tip(branch) is None:
        return
    name = kept = f"swarm/{why}/{task_id}/c{cycle or 0}-a{attempt}"
    copies = 1
    while repo.branch_tip(kept) is not None:  # an attempt a crash cut short before it was recorded
        copies += 1
        kept = f"{name}-{copies}"
    repo.rename_branch(branch, kept)
