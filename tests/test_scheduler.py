"""The scheduler: a pure function, so its rules are checked exhaustively on generated trees."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from swarmd.daemon.scheduler import decide, order
from swarmd.tasks import ROOT, Kind, Role, RootPlanner, Status, Task


def task(task_id: str, kind: str = "work", status: str = "todo", needs: tuple[str, ...] = ()) -> Task:
    parent = task_id.rpartition(".")[0] or None
    return Task(id=task_id, title=task_id, kind=Kind(kind), status=Status(status), parent=parent, needs=list(needs))


def tree(*tasks: Task) -> dict[str, Task]:
    return {t.id: t for t in tasks}


ROOT_DONE = RootPlanner(status=Status.DONE)
ROOT_WAITING = RootPlanner(status=Status.RUNNING)


def test_a_new_cycle_starts_with_its_root_planner() -> None:
    decision = decide({}, RootPlanner(), {}, planners=2, workers=4)
    assert decision.start == [(Role.PLANNER, ROOT)] and not decision.judge


def test_ready_work_runs_in_id_order_within_the_limit() -> None:
    tasks = tree(task("10"), task("2"), task("1"), task("3", needs=("1",)))
    decision = decide(tasks, ROOT_WAITING, {}, planners=2, workers=2)
    assert decision.start == [(Role.WORKER, "1"), (Role.WORKER, "2")]


def test_needs_wait_for_done() -> None:
    tasks = tree(task("1", status="running"), task("2", needs=("1",)))
    assert decide(tasks, ROOT_WAITING, {"1": Role.WORKER}, 2, 4).start == []
    tasks = tree(task("1", status="done"), task("2", needs=("1",)))
    assert decide(tasks, ROOT_WAITING, {}, 2, 4).start == [(Role.WORKER, "2")]


def test_a_failed_need_blocks_and_the_block_spreads() -> None:
    tasks = tree(task("1", status="failed"), task("2", needs=("1",)), task("3", needs=("2",)))
    decision = decide(tasks, ROOT_WAITING, {}, 2, 4)
    assert decision.block == ["2", "3"]
    assert decision.start == [(Role.PLANNER, ROOT)], "every top-level task finished: the root planner wakes"


def test_a_planner_is_woken_when_everything_below_it_finished() -> None:
    tasks = tree(task("1", "plan", "running"), task("1.1", status="done"), task("1.2", status="running"))
    assert decide(tasks, ROOT_WAITING, {"1.2": Role.WORKER}, 2, 4).start == []
    tasks["1.2"] = task("1.2", status="failed")
    assert decide(tasks, ROOT_WAITING, {}, 2, 4).start == [(Role.PLANNER, "1")]


def test_planners_and_workers_have_their_own_limits() -> None:
    tasks = tree(task("1", "plan"), task("2", "plan"), task("3", "plan"), task("4"), task("5"))
    decision = decide(tasks, ROOT_WAITING, {"9": Role.PLANNER}, planners=2, workers=1)
    assert decision.start == [(Role.PLANNER, "1"), (Role.WORKER, "4")]


def test_the_judge_runs_when_nothing_runs_or_can() -> None:
    tasks = tree(task("1", status="done"), task("2", status="failed"), task("3", needs=("2",), status="blocked"))
    assert decide(tasks, ROOT_DONE, {}, 2, 4).judge
    assert not decide(tasks, ROOT_DONE, {"0.1": Role.WORKER}, 2, 4).judge


def test_swarmd_own_tasks_run_but_do_not_hold_the_root_planner() -> None:
    tasks = tree(task("1", status="done"), Task(id="0.1", title="fix", kind=Kind.WORK, parent="0"))
    decision = decide(tasks, ROOT_WAITING, {}, 2, 4)
    assert decision.start == [(Role.PLANNER, ROOT), (Role.WORKER, "0.1")]


@st.composite
def states(draw: st.DrawFn) -> tuple[dict[str, Task], RootPlanner, dict[str, Role], int, int]:
    tasks: dict[str, Task] = {}
    plans: list[str | None] = [None]
    for _ in range(draw(st.integers(0, 30))):
        parent = draw(st.sampled_from(plans))
        siblings = [t for t in tasks if tasks[t].parent == parent]
        task_id = f"{parent}.{len(siblings) + 1}" if parent else str(len(siblings) + 1)
        kind = draw(st.sampled_from(Kind))
        earlier = sorted(tasks)
        tasks[task_id] = Task(
            id=task_id, title="t", kind=kind, status=draw(st.sampled_from(Status)), parent=parent,
            needs=draw(st.lists(st.sampled_from(earlier), unique=True, max_size=3)) if earlier else [],
        )
        if kind is Kind.PLAN:
            plans.append(task_id)
    running_ids = draw(st.lists(st.sampled_from(sorted(tasks) + [ROOT]), unique=True)) if tasks else []
    running = {
        t: (Role.PLANNER if t == ROOT or tasks[t].kind is Kind.PLAN else Role.WORKER) for t in running_ids
    }
    root = RootPlanner(status=draw(st.sampled_from([Status.TODO, Status.RUNNING, Status.DONE])))
    return tasks, root, running, draw(st.integers(1, 4)), draw(st.integers(1, 6))


@settings(max_examples=400, deadline=None)
@given(states())
def test_the_rules_hold_on_any_tree(state: tuple[dict[str, Task], RootPlanner, dict[str, Role], int, int]) -> None:
    tasks, root, running, planners, workers = state
    decision = decide(tasks, root, running, planners, workers)
    started = [task_id for _, task_id in decision.start]
    assert len(started) == len(set(started)) and not set(started) & set(running)
    for role, limit in ((Role.PLANNER, planners), (Role.WORKER, workers)):
        now = sum(1 for r in running.values() if r is role) + sum(1 for r, _ in decision.start if r is role)
        assert now <= max(limit, sum(1 for r in running.values() if r is role))
    blocked = set(decision.block)
    for role, task_id in decision.start:
        if task_id == ROOT:
            continue
        task = tasks[task_id]
        assert role is (Role.PLANNER if task.kind is Kind.PLAN else Role.WORKER)
        assert all(tasks[need].status is Status.DONE for need in task.needs)
        assert task.status in (Status.TODO, Status.RUNNING) and task_id not in blocked
        if task.kind is Kind.WORK:
            assert task.status is Status.TODO
    for task_id in decision.block:
        assert tasks[task_id].status is Status.TODO
    for role in Role:
        ids = [t for r, t in decision.start if r is role and t != ROOT]
        assert ids == sorted(ids, key=order), "each role starts tasks in id order"
    if decision.judge:
        assert not running and not decision.start
