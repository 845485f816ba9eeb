"""The client's side of a run: an agent (one aiohttp session, so one keep-alive connection), one request
timed into a `Sample`, the loads (1 agent one request after another, N agents with staggered arrivals, N in
lockstep), the untimed warm-up, and a `Run`: the samples with the CPU each process spent (/proc) and how
long something waited for a CPU."""

from __future__ import annotations

import asyncio
import os
import random
import time
from collections.abc import Coroutine
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from gatewaybench.payloads import Case, auth
from swarmbench.noise import cpu_stall, wait_quiet

SEQUENTIAL_PAUSE_S = 0.02
LOCKSTEP_PAUSE_S = 0.3


@dataclass(frozen=True)
class Sample:
    total: float  # seconds from sending the request to the last byte of the answer
    first: float  # seconds to the first byte of the answer's body
    events: int  # server-sent events received (0: a JSON answer)


@dataclass
class Agent:
    session: Any  # aiohttp.ClientSession, its own keep-alive connection
    base: str  # the upstream's URL, or the agent's base URL at the gateway
    key: str
    extra: dict[str, str]


@dataclass
class Run:
    samples: list[Sample]
    seconds: float
    cpu: dict[str, float]  # process -> CPU seconds during the run
    waited: float | None  # share of the time something waited for a CPU


async def one(agent: Agent, case: Case, body: bytes) -> Sample:
    headers = {**auth(case, agent.key), **agent.extra}
    start, first, events, last = time.perf_counter(), 0.0, 0, b""
    async with agent.session.post(agent.base + case.path, data=body, headers=headers) as answer:
        if answer.status != 200:
            raise RuntimeError(f"{agent.base}{case.path} answered {answer.status}: {(await answer.text())[:300]}")
        async for chunk in answer.content.iter_any():
            if not first:
                first = time.perf_counter()
            events += chunk.count(b"\n\n") + (last == b"\n" and chunk[:1] == b"\n")
            last = chunk[-1:]
    return Sample(time.perf_counter() - start, first - start, events)


async def fetch(agent: Agent, case: Case, body: bytes) -> bytes:
    async with agent.session.post(agent.base + case.path, data=body, headers=auth(case, agent.key)) as answer:
        return await answer.read()


async def sequential(agent: Agent, case: Case, body: bytes, n: int) -> list[Sample]:
    samples = []
    for _ in range(n):
        samples.append(await one(agent, case, body))
        await asyncio.sleep(SEQUENTIAL_PAUSE_S)
    return samples


async def staggered(agents: list[Agent], case: Case, body: bytes, per_agent: int, think: float,
                    seed: int) -> list[Sample]:
    """The realistic arrivals: each agent starts at a random moment, then request, think, request..."""
    rng = random.Random(seed)
    plans = [[rng.uniform(0, 1.5 * think)] + [think * rng.uniform(0.5, 1.5) for _ in range(per_agent - 1)]
             for _ in agents]

    async def work(agent: Agent, plan: list[float]) -> list[Sample]:
        samples = []
        for pause in plan:
            await asyncio.sleep(pause)
            samples.append(await one(agent, case, body))
        return samples

    done = await asyncio.gather(*(work(agent, plan) for agent, plan in zip(agents, plans)))
    return [sample for samples in done for sample in samples]


async def lockstep(agents: list[Agent], case: Case, body: bytes, rounds: int) -> list[Sample]:
    """The worst case: every agent sends at the same instant; the next round once all are answered."""
    samples: list[Sample] = []
    for n in range(rounds):
        if n:
            await asyncio.sleep(LOCKSTEP_PAUSE_S)
        samples += await asyncio.gather(*(one(agent, case, body) for agent in agents))
    return samples


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")  # utime + stime


def cpu_now(pids: dict[str, int]) -> dict[str, float]:
    return {"client": time.process_time()} | {name: cpu_seconds(pid) for name, pid in pids.items()}


async def warm_up(agents: list[Agent], case: Case, body: bytes) -> None:
    """One untimed request from every agent, at once: every keep-alive connection is open after it."""
    await asyncio.gather(*(one(agent, case, body) for agent in agents))


async def measured(load: Coroutine[Any, Any, list[Sample]], warm: Coroutine[Any, Any, None], pids: dict[str, int],
                   quiet: float) -> Run:
    """`warm`, then `load` timed (coroutines not yet started)."""
    if quiet:
        await asyncio.get_running_loop().run_in_executor(None, wait_quiet, quiet)
    await warm
    before, stall, start = cpu_now(pids), cpu_stall(), time.perf_counter()
    samples = await load
    seconds, after, stalled = time.perf_counter() - start, cpu_now(pids), cpu_stall()
    waited = None if stall is None or stalled is None else (stalled - stall) / 1e6 / seconds
    return Run(samples, seconds, {name: after[name] - before[name] for name in before}, waited)


def agents_at(sessions: list[Any], bases: list[str], key: str | None) -> list[Agent]:
    """Agents that send to `bases` (their gateway base URLs, or the upstream's URL for all)."""
    return [Agent(session, base, key or base.rpartition("/")[2], {}) for session, base in zip(sessions, bases)]
