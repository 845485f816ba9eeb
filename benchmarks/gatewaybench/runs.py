"""Every run of the benchmark, from the client: the calibration (the scripted server next to the light
upstream), the check that the gateway changes no answer, then every load, case and side, the sides taking
turns (ABAB) with the same seeded arrivals; the runs by (load, case, side)."""

from __future__ import annotations

import argparse
import statistics
from collections.abc import Coroutine
from typing import Any

from gatewaybench.load import (Agent, Run, Sample, agents_at, fetch, lockstep, measured, sequential, staggered,
                               warm_up)
from gatewaybench.payloads import DIRECT_KEY, UNPACED, Case
from gatewaybench.report import progress

CALIBRATION_REQUESTS = 50


async def bench(args: argparse.Namespace, cases: list[Case], bodies: dict[Case, bytes], urls: dict[str, str],
                bases: list[str], pids: dict[str, int]) -> dict[tuple[str, str, str], list[Run]]:
    """Every load, case and side, after the calibration and the check; the runs by (load, case, side)."""
    from aiohttp import ClientSession, ClientTimeout, TCPConnector

    def session() -> ClientSession:
        return ClientSession(connector=TCPConnector(limit=1, keepalive_timeout=3600),
                             timeout=ClientTimeout(total=300))

    upstream = urls["light"] if args.upstream == "light" else urls["scripted"]
    sessions = {side: [session() for _ in range(args.agents)] for side in ("direct", "gateway")}
    sides = {"direct": agents_at(sessions["direct"], [upstream] * args.agents, DIRECT_KEY),
             "gateway": agents_at(sessions["gateway"], bases, None)}
    try:
        if args.upstream == "light":
            await calibrate(cases, bodies, urls, pids)
        for case in cases:  # the gateway changes nothing the client sees
            direct = await fetch(sides["direct"][0], case, bodies[case])
            through = await fetch(sides["gateway"][0], case, bodies[case])
            if args.upstream == "light" and direct != through:
                raise RuntimeError(f"{case.name}: the answer through the gateway differs from the direct one:\n"
                                   f"{direct[:600]!r}\n{through[:600]!r}")
        if args.upstream == "light":
            print("checked: each case's answer through the gateway is byte for byte the direct one", flush=True)
        runs: dict[tuple[str, str, str], list[Run]] = {}
        for load in ("1 agent", f"{args.agents} agents", f"{args.agents} in lockstep"):
            for case in cases:
                for n in range(args.rounds):
                    for side in ("direct", "gateway"):  # ABAB, the same arrivals on both sides
                        agents = sides[side][:1] if load == "1 agent" else sides[side]
                        run = await measured(the_load(args, load, agents, case, bodies[case], 1000 + n),
                                             warm_up(agents, case, bodies[case]), pids, args.wait_quiet)
                        runs.setdefault((load, case.name, side), []).append(run)
                        print(progress(load, case, side, n, run), flush=True)
        return runs
    finally:
        for opened in sessions.values():
            for each in opened:
                await each.close()


def the_load(args: argparse.Namespace, load: str, agents: list[Agent], case: Case, body: bytes,
             seed: int) -> Coroutine[Any, Any, list[Sample]]:
    if load == "1 agent":
        return sequential(agents[0], case, body, args.requests)
    if load.endswith("lockstep"):
        return lockstep(agents, case, body, args.lockstep_rounds)
    return staggered(agents, case, body, args.per_agent, args.think, seed)


async def calibrate(cases: list[Case], bodies: dict[Case, bytes], urls: dict[str, str], pids: dict[str, int]) -> None:
    """The scripted server next to the light upstream: 1 agent, direct, both answering at once."""
    from aiohttp import ClientSession

    print(f"calibration, 1 agent, direct, the upstream answering at once (median of {CALIBRATION_REQUESTS}):")
    async with ClientSession() as scripted_session, ClientSession() as light_session:
        scripted = Agent(scripted_session, urls["scripted"], DIRECT_KEY, {})
        light = Agent(light_session, urls["light"], DIRECT_KEY, {UNPACED: "1"})
        for case in cases:
            found = []
            for agent in (scripted, light):
                run = await measured(sequential(agent, case, bodies[case], CALIBRATION_REQUESTS),
                                     warm_up([agent], case, bodies[case]), pids, 0.0)
                median = statistics.median(s.total for s in run.samples) * 1000
                found.append(f"{median:5.2f} ms (upstream CPU {run.cpu['upstream'] * 1000 / len(run.samples):.2f} "
                             "ms a request)")
            print(f"  {case.name:17s} scripted server {found[0]}, light upstream {found[1]}", flush=True)
    print("  (the scripted server speaks HTTP/1.0: a new connection and a new thread for every request, the\n"
          "  gateway's to it too; the runs below use the light upstream, which keeps its connections)")
