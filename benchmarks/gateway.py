"""Benchmark of the metering gateway's own cost (issue 10): every request timed through the gateway and,
side by side, straight to the same upstream, at 1 agent and at 100 agents, against the issue's targets.

    python benchmarks/gateway.py [--requests 30] [--agents 100] [--per-agent 3] [--lockstep-rounds 5]
                                 [--rounds 2] [--think 1.0] [--delay 50] [--gap 2] [--tokens 50] [--prompt-kb 100]
                                 [--cases chat,anthropic,json] [--upstream light|scripted] [--quick] [--profile]
                                 [--wait-quiet SECONDS]

Three processes, as in real use:
  upstream  the model: a light aiohttp server in a process of its own that answers with the bytes the
            scripted model server (swarmd.testing) gave for the same kind of request, captured once at
            start, so that it costs the same whether the request came straight or through the gateway
  gateway   swarmd.gateway's Gateway on its thread, with a Spend in a temporary folder and one route to
            the upstream, in a process whose main thread only waits, standing in for the daemon
  client    this process (aiohttp): one session, so one keep-alive connection, per agent, as every
            agent is a process of its own

Why not the scripted server itself as the upstream: it is a ThreadingHTTPServer that speaks HTTP/1.0, so
every request costs it a new thread and a new TCP connection (the gateway's too), and it parses the request
and renders the answer each time. The calibration printed first times it next to the light upstream;
`--upstream scripted` runs everything against it instead (then `--gap` does not apply). The light
upstream keeps connections alive, as a provider does, waits `--delay` ms before it answers (the model's
time to first token) and sends a stream's events one by one: its text pieces `--gap` ms apart on a fixed
schedule (a model's pace, sped up), the events around them (role, block start and stop, finish, usage,
the end) at once after the one before, as a provider does.
Before anything is timed, one answer of each case through the gateway is checked to be byte for byte the
direct one.

Cases (each request carries the same conversation of `--prompt-kb` KB: an agent sends its whole history
every time, and the gateway reads it):
  chat stream       OpenAI chat completions, streamed, without `stream_options`: the gateway asks for
                    usage and hides the usage chunk from the client (the usage-injection path)
  anthropic stream  Anthropic messages, streamed
  chat JSON         OpenAI chat completions, not streamed (as the built-in agent asks)

Loads:
  1 agent           `--requests` requests one after another, 20 ms apart
  N agents          the realistic arrivals, which the targets apply to: each agent starts at a random
                    moment within 1.5 think times, then loops: a request, then it thinks for
                    `--think` x uniform(0.5, 1.5) s; `--per-agent` requests each. With the defaults about
                    65 requests a second arrive, staggered: more than a real swarm of 100 sends, whose
                    turns take seconds
  N in lockstep     the worst case, for information (no target): all N send at the same instant, wait for
                    every answer, and again, `--lockstep-rounds` times

Every load and case runs `--rounds` times on each side, the sides taking turns (direct, gateway, direct,
gateway: ABAB) with the same seeded arrivals. Before each run every agent sends one untimed request, so the
keep-alive connections (the client's, and the gateway's own to the upstream) are open, as in a swarm at
work. Per request: `total` (sending to the last byte), `first byte` (to the first byte of the body: a
stream's first event) and, for streams, `per event` (the total divided by the events the client got; the
added per event is the added latency spread over them). The tables show the median and p90 of all of a
side's runs, the added ms (gateway - direct, of the medians and of the p90s) and the ratio of the medians;
then the CPU each process spent per request through the gateway (/proc; for the gateway also per event:
its whole CPU per request spread over the events), and whether the targets are met. (A JSON answer's
first byte comes with the rest of it.) The gateway's route names no model, as for an agent whose config
names none, so the gateway reads the model from every request body.

Targets (issue 10), on the realistic arrivals: under 5 ms added per request at N agents (the median of
each case), and under 2 ms added to the time to first byte (the median of each streamed case, at 1 agent
and at N agents).

Three Python processes share this machine's cores (2 here): under load the client and the upstream take
CPU that the gateway then waits for, and the other way round, where a swarm's agents and its provider
would mostly be elsewhere. Each run says how much of its time something waited for a CPU
(/proc/pressure/cpu); `--wait-quiet` waits for a quiet moment before each run. `--profile` runs the
gateway's thread under cProfile and prints its hot spots; profiling slows the gateway, so the figures of a
profiled run are not the benchmark's.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import re
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Coroutine
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from hostinfo import load_average
from swarmbench.noise import cpu_stall, wait_quiet
from swarmbench.report import machine

MODELS = {"chat": "gpt-4o", "messages": "claude-sonnet-4-5"}  # priced from litellm's map, as a real run is
DIRECT_KEY = "sk-benchmark-direct"
UNPACED = "x-benchmark-unpaced"  # the calibration asks the light upstream to answer at once
TARGET_ADDED_MS = 5.0
TARGET_FIRST_BYTE_MS = 2.0
SEQUENTIAL_PAUSE_S = 0.02
LOCKSTEP_PAUSE_S = 0.3
CALIBRATION_REQUESTS = 50
SYSTEM = "You are a worker of a swarm of coding agents. Do the task below, run the tests, commit, hand off."
WORDS = ("parser config loader cache index report export command option flag schema handler request response "
         "client server token query record entry node branch commit merge retry timeout limit output format "
         'module function class test fixture error message path file folder def return "value" {x} \\ ->').split()
_STREAM = re.compile(rb'"stream"\s*:\s*true')
_INCLUDE_USAGE = re.compile(rb'"include_usage"\s*:\s*true')
_TOKEN = re.compile(rb'"delta": \{"content": "|"text_delta"')  # the events a model paces: its text, piece by piece


@dataclass(frozen=True)
class Case:
    name: str
    api: str  # chat or messages
    stream: bool

    @property
    def path(self) -> str:
        return "/v1/chat/completions" if self.api == "chat" else "/v1/messages"


CASES = {"chat": Case("chat stream", "chat", True), "anthropic": Case("anthropic stream", "messages", True),
         "json": Case("chat JSON", "chat", False)}


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--requests", type=int, help="1 agent: requests per run (default 30; --quick: 10)")
    parser.add_argument("--agents", type=int, default=100, help="concurrent agents (default 100)")
    parser.add_argument("--per-agent", type=int, help="realistic arrivals: requests per agent per run (default 3; "
                        "--quick: 2)")
    parser.add_argument("--lockstep-rounds", type=int, help="lockstep: rounds per run (default 5; --quick: 2)")
    parser.add_argument("--rounds", type=int, help="runs of each side per load and case, taking turns (default 2; "
                        "--quick: 1)")
    parser.add_argument("--think", type=float, default=1.0, help="realistic arrivals: mean think time, s")
    parser.add_argument("--delay", type=float, default=50.0, help="ms the upstream waits before it answers")
    parser.add_argument("--gap", type=float, default=2.0, help="ms between the text pieces of a streamed answer")
    parser.add_argument("--tokens", type=int, default=50, help="text pieces in an answer (16 characters each; a "
                        "stream has a few events more)")
    parser.add_argument("--prompt-kb", type=int, default=100, help="size of each request's conversation, KB")
    parser.add_argument("--cases", default="chat,anthropic,json", help="which of chat,anthropic,json to run")
    parser.add_argument("--upstream", choices=("light", "scripted"), default="light",
                        help="light: an aiohttp server replaying the scripted server's bytes; scripted: "
                        "swarmd.testing.ScriptedModelServer itself")
    parser.add_argument("--quick", action="store_true", help="a smoke run: fewer requests, one run per side")
    parser.add_argument("--profile", action="store_true", help="profile the gateway's thread (cProfile) and print "
                        "its hot spots")
    parser.add_argument("--wait-quiet", type=float, default=0.0, metavar="SECONDS",
                        help="before each run, wait up to this long for the CPUs to be quiet")
    # internal entry points: the benchmark runs this script again as the upstream and as the gateway
    parser.add_argument("--serve-upstream", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--serve-gateway", help=argparse.SUPPRESS)
    parser.add_argument("--turns", type=int, default=0, help=argparse.SUPPRESS)
    parser.add_argument("--spend", help=argparse.SUPPRESS)
    parser.add_argument("--profile-out", help=argparse.SUPPRESS)
    return parser.parse_args()


# -- what is sent and answered ------------------------------------------------------------------------

def conversation(kb: int, seed: int = 1) -> tuple[list[dict[str, str]], int]:
    """Alternating user and assistant messages of about `kb` KB in all, ending with a user message; and
    how many assistant turns they hold."""
    rng = random.Random(seed)
    messages: list[dict[str, str]] = []
    size = 0
    while size < kb * 1024 or len(messages) % 2 == 0:
        lines = [" ".join(rng.choice(WORDS) for _ in range(12)) for _ in range(rng.randint(4, 40))]
        messages.append({"role": "assistant" if len(messages) % 2 else "user", "content": "\n".join(lines)})
        size += len(json.dumps(messages[-1]))
    return messages, len(messages) // 2


def request_body(case: Case, messages: list[dict[str, str]]) -> bytes:
    if case.api == "chat":
        body: dict[str, Any] = {"model": MODELS["chat"], "messages": [{"role": "system", "content": SYSTEM}, *messages]}
    else:
        body = {"model": MODELS["messages"], "max_tokens": 8192, "system": SYSTEM, "messages": messages}
    return json.dumps({**body, "stream": case.stream}).encode()


def answer_text(tokens: int) -> str:
    rng = random.Random(2)
    text = ""
    while len(text) < 16 * tokens:  # the scripted server streams text in pieces of 16 characters
        text += rng.choice(WORDS) + " "
    return text[:16 * tokens]


def auth(case: Case, key: str) -> dict[str, str]:
    if case.api == "chat":
        return {"Content-Type": "application/json", "Authorization": f"Bearer {key}"}
    return {"Content-Type": "application/json", "x-api-key": key, "anthropic-version": "2023-06-01"}


def answer_key(path: str, body: bytes) -> tuple[str, bool, bool]:
    """Which captured answer a request gets: (api, streamed, with a usage chunk)."""
    api = "chat" if path.endswith("/chat/completions") else "messages"
    return api, bool(_STREAM.search(body)), api == "chat" and bool(_INCLUDE_USAGE.search(body))


# -- the upstream's process -----------------------------------------------------------------------

def serve_upstream(args: argparse.Namespace) -> int:
    """Run the scripted server (and, unless --upstream scripted, the light upstream); print their URLs; serve
    until stdin closes."""
    from swarmd.testing import ScriptedModelServer

    usage = {"input_tokens": args.prompt_kb * 256, "output_tokens": args.tokens * 4}
    delay = args.delay / 1000 if args.upstream == "scripted" else 0.0
    reply = {"text": answer_text(args.tokens), "usage": usage, "delay": delay}
    with ScriptedModelServer({"replies": [reply] * (args.turns + 1)}) as scripted:
        if args.upstream == "scripted":
            print(json.dumps({"scripted": scripted.base_url}), flush=True)
            sys.stdin.read()
            return 0
        answers = capture(scripted.base_url)
        asyncio.run(serve_light(answers, scripted.base_url, args.delay / 1000, args.gap / 1000))
    return 0


def capture(base: str) -> dict[tuple[str, bool, bool], bytes]:
    """The scripted server's answer to each kind of request, as bytes."""
    import http.client
    from urllib.parse import urlsplit

    address = urlsplit(base)
    answers = {}
    for api, stream, usage in (("chat", True, True), ("chat", True, False), ("chat", False, False),
                               ("messages", True, False), ("messages", False, False)):
        case = Case(api, api, stream)
        body: dict[str, Any] = {"model": MODELS[api], "max_tokens": 8192, "stream": stream,
                                "messages": [{"role": "user", "content": "hello"}]}
        if usage:
            body["stream_options"] = {"include_usage": True}
        connection = http.client.HTTPConnection(address.hostname, address.port)
        connection.request("POST", case.path, json.dumps(body).encode(), auth(case, "k"))
        answer = connection.getresponse()
        data = answer.read()
        connection.close()
        if answer.status != 200:
            raise RuntimeError(f"the scripted server answered {answer.status}: {data[:300]!r}")
        answers[(api, stream, usage)] = data
    return answers


async def serve_light(answers: dict[tuple[str, bool, bool], bytes], scripted: str, delay: float, gap: float) -> None:
    from aiohttp import web

    events = {key: [event + b"\n\n" for event in data.split(b"\n\n") if event] for key, data in answers.items()}
    loop = asyncio.get_running_loop()

    async def handle(request: web.Request) -> web.StreamResponse:
        body = await request.read()
        key = answer_key(request.path, body)
        paced = UNPACED not in request.headers
        if paced and delay:
            await asyncio.sleep(delay)
        if not key[1]:
            return web.Response(body=answers[key], content_type="application/json")
        answer = web.StreamResponse(headers={"Content-Type": "text/event-stream", "Cache-Control": "no-cache"})
        await answer.prepare(request)
        start, tokens = loop.time(), 0
        for event in events[key]:
            if paced and gap and _TOKEN.search(event):  # on a fixed schedule: a late wake-up delays no other
                await asyncio.sleep(start + tokens * gap - loop.time())
                tokens += 1
            await answer.write(event)
        await answer.write_eof()
        return answer

    app = web.Application(client_max_size=256 * 1024 * 1024)
    app.router.add_post("/{path:.*}", handle)
    runner = web.AppRunner(app, access_log=None, handle_signals=False)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", 0).start()
    host, port = runner.addresses[0][:2]
    print(json.dumps({"light": f"http://{host}:{port}", "scripted": scripted}), flush=True)
    await asyncio.get_running_loop().run_in_executor(None, sys.stdin.read)
    await runner.cleanup()


# -- the gateway's process ------------------------------------------------------------------------

def serve_gateway(args: argparse.Namespace) -> int:
    """The gateway on its thread, routed to the upstream; print the agents' base URLs; idle until stdin
    closes, as the daemon's main thread would between events."""
    import cProfile
    import threading

    from swarmd.gateway.routes import Route
    from swarmd.gateway.server import Gateway
    from swarmd.gateway.spend import Budgets, Spend

    gateway = Gateway(Spend(Path(args.spend), Budgets()), {"worker": Route(api_base=args.serve_gateway + "/v1")},
                      environ={})
    gateway.start()
    bases = [gateway.base_url(gateway.admit("worker", f"t{n}", 1, 1)) for n in range(args.agents)]
    profiler = cProfile.Profile() if args.profile_out else None
    loop = gateway._loop  # the gateway's own loop: a profiler enabled there profiles its thread alone
    assert loop is not None
    if profiler is not None:
        loop.call_soon_threadsafe(profiler.enable)
    print(json.dumps({"bases": bases}), flush=True)
    sys.stdin.read()
    if profiler is not None:
        done = threading.Event()
        loop.call_soon_threadsafe(lambda: (profiler.disable(), done.set()))
        done.wait()
        profiler.dump_stats(args.profile_out)
    gateway.stop()
    return 0


# -- the client -----------------------------------------------------------------------------------

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


# -- the report -----------------------------------------------------------------------------------

def progress(load: str, case: Case, side: str, n: int, run: Run) -> str:
    count = len(run.samples)
    cpu = ", ".join(f"{name} {run.cpu[name] * 1000 / count:.2f}" for name in ("gateway", "upstream", "client"))
    waited = "" if run.waited is None else f"; waited for a CPU {run.waited:.0%}"
    return (f"  {load:19s} {case.name:17s} {side:7s} #{n + 1}: {count:4d} requests in {run.seconds:5.1f} s, "
            f"median {statistics.median(s.total for s in run.samples) * 1000:7.2f} ms; CPU ms a request: {cpu}"
            + waited)


def p90(values: list[float]) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(0.9 * (len(ordered) - 1)))]


def figures(runs: list[Run], what: str) -> list[float]:
    samples = [s for run in runs for s in run.samples]
    if what == "total":
        return [s.total * 1000 for s in samples]
    if what == "first":
        return [s.first * 1000 for s in samples]
    return [s.total * 1000 / s.events for s in samples if s.events]


def added(runs: dict[tuple[str, str, str], list[Run]], load: str, case: str, what: str) -> float:
    return (statistics.median(figures(runs[(load, case, "gateway")], what))
            - statistics.median(figures(runs[(load, case, "direct")], what)))


def table(runs: dict[tuple[str, str, str], list[Run]], loads: list[str], cases: list[Case]) -> list[str]:
    out = [f"  {'':17s} {'':14s} {'direct':>17s}   {'via gateway':>17s}   {'added':>17s}   {'ratio':>6s}",
           f"  {'case':17s} {'ms':14s} {'median':>8s} {'p90':>8s}   {'median':>8s} {'p90':>8s}   {'median':>8s} "
           f"{'p90':>8s}   {'median':>6s}"]
    for load in loads:
        counts = {side: len(figures(runs[(load, cases[0].name, side)], "total")) for side in ("direct", "gateway")}
        out.append(f"{load} ({counts['direct']} requests a side)")
        for case in cases:
            whats = (("total", "total"), ("first", "first byte")) + ((("event", "per event"),) if case.stream else ())
            for n, (what, label) in enumerate(whats):
                direct = figures(runs[(load, case.name, "direct")], what)
                gateway = figures(runs[(load, case.name, "gateway")], what)
                dm, dp, gm, gp = statistics.median(direct), p90(direct), statistics.median(gateway), p90(gateway)
                out.append(f"  {case.name if n == 0 else '':17s} {label:14s} {dm:8.3f} {dp:8.3f}   "
                           f"{gm:8.3f} {gp:8.3f}   "
                           f"{gm - dm:+8.3f} {gp - dp:+8.3f}   {gm / dm:5.2f}x")
            gw = runs[(load, case.name, "gateway")]
            count = sum(len(run.samples) for run in gw)
            cpu = {name: sum(run.cpu[name] for run in gw) * 1000 / count for name in ("gateway", "upstream", "client")}
            events = statistics.median(s.events for run in gw for s in run.samples)
            per_event = f" ({cpu['gateway'] * 1000 / events:.0f} us per event)" if events else ""
            waited = [run.waited for run in gw + runs[(load, case.name, "direct")] if run.waited is not None]
            out.append(f"  {'':17s} CPU ms per request through the gateway: gateway {cpu['gateway']:.2f}{per_event}, "
                       f"upstream {cpu['upstream']:.2f}, client {cpu['client']:.2f}"
                       + (f"; waited for a CPU {statistics.mean(waited):.0%}" if waited else ""))
    return out


def targets(runs: dict[tuple[str, str, str], list[Run]], loads: list[str], cases: list[Case]) -> list[str]:
    one_agent, realistic, worst = loads
    streamed = [case for case in cases if case.stream]
    checks = [(f"added per request at {realistic}, realistic arrivals, median", TARGET_ADDED_MS, realistic, cases,
               "total")]
    checks += [(f"added to the first byte at {load}, median", TARGET_FIRST_BYTE_MS, load, streamed, "first")
               for load in (one_agent, realistic)]
    out = ["targets (issue 10; on the realistic arrivals, not the lockstep worst case):"]
    for text, limit, load, which, what in checks:
        values = {case.name: added(runs, load, case.name, what) for case in which}
        if not values:
            continue
        verdict = "PASS" if max(values.values()) < limit else "MISS"
        found = ", ".join(f"{name} {value:+.2f}" for name, value in values.items())
        out.append(f"  [{verdict}] {text} < {limit:g} ms: {found} ms")
    found = ", ".join(f"{case.name} {added(runs, worst, case.name, 'total'):+.2f} (first byte "
                      f"{added(runs, worst, case.name, 'first'):+.2f})" for case in cases)
    out.append(f"  [info] worst case, {worst}, added median ms (no target): {found}")
    return out


def hot_spots(path: Path, limit: int = 20) -> list[str]:
    """The gateway thread's profile: where its busy time went (waiting in epoll left out), by own time, and
    swarmd's own functions by cumulative time."""
    import pstats

    stats = pstats.Stats(str(path)).stats  # type: ignore[attr-defined]
    idle = sum(tt for (_, _, name), (_, _, tt, _, _) in stats.items() if "select.epoll" in name)
    busy = sum(tt for _, _, tt, _, _ in stats.values()) - idle

    def rows(entries: list[tuple[tuple[str, int, str], float, int]]) -> list[str]:
        return [f"  {seconds / busy:6.1%} {seconds * 1e6 / calls:9.1f} {calls:8d}  "
                f"{Path(file).name}:{line}({name})" for (file, line, name), seconds, calls in entries]

    own = sorted(((key, tt, nc) for key, (_, nc, tt, _, _) in stats.items() if "select.epoll" not in key[2]),
                 key=lambda row: -row[1])[:limit]
    ours = sorted(((key, ct, nc) for key, (_, nc, _, ct, _) in stats.items() if "/swarmd/" in key[0]),
                  key=lambda row: -row[1])[:limit]
    header = f"  {'of busy':>6s} {'us/call':>9s} {'calls':>8s}  function"
    return ([f"busy {busy:.2f} s (idle in epoll {idle:.2f} s); by own time:", header, *rows(own),
             "swarmd's functions by cumulative time (a coroutine's calls count each time it resumes):", header,
             *rows(ours)])


# -- the benchmark --------------------------------------------------------------------------------

def start_child(args: list[str]) -> tuple[subprocess.Popen[str], dict[str, Any]]:
    """This script again, in its own session, as the upstream or the gateway; what it printed first."""
    proc = subprocess.Popen([sys.executable, __file__, *args], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                            text=True, start_new_session=True)
    assert proc.stdout is not None
    line = proc.stdout.readline()
    if not line:
        proc.wait()
        raise RuntimeError(f"{' '.join(args[:1])}: the child exited {proc.returncode} before it was ready")
    return proc, json.loads(line)


def stop_child(proc: subprocess.Popen[str]) -> None:
    assert proc.stdin is not None
    proc.stdin.close()
    try:
        proc.wait(timeout=15)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()


def main() -> int:
    args = parse_args()
    if args.serve_upstream:
        return serve_upstream(args)
    if args.serve_gateway:
        return serve_gateway(args)
    args.requests = args.requests or (10 if args.quick else 30)
    args.per_agent = args.per_agent or (2 if args.quick else 3)
    args.lockstep_rounds = args.lockstep_rounds or (2 if args.quick else 5)
    args.rounds = args.rounds or (1 if args.quick else 2)
    cases = [CASES[name.strip()] for name in args.cases.split(",") if name.strip()]
    messages, turns = conversation(args.prompt_kb)
    bodies = {case: request_body(case, messages) for case in cases}
    print(f"command: python benchmarks/gateway.py --requests {args.requests} --agents {args.agents} --per-agent "
          f"{args.per_agent} --lockstep-rounds {args.lockstep_rounds} --rounds {args.rounds} --think {args.think:g} "
          f"--delay {args.delay:g} --gap {args.gap:g} --tokens {args.tokens} --prompt-kb {args.prompt_kb} "
          f"--cases {args.cases} --upstream {args.upstream}" + (" --profile" if args.profile else ""))
    print(f"machine: {machine()}")
    print(f"load average at the start: {load_average()} (1, 5, 15 min)")
    print(f"requests: a conversation of {len(messages)} messages, {len(bodies[cases[0]]) // 1024} KB; answers: "
          f"{args.tokens} text pieces, the upstream waits {args.delay:g} ms, then streams a piece every {args.gap:g} ms"
          + (" (not with --upstream scripted)" if args.upstream == "scripted" else ""))
    print("three Python processes share the cores: the client (this one), the gateway's, the upstream's")
    if args.profile:
        print("--profile: the gateway's thread runs under cProfile, which slows it: these figures are not the "
              "benchmark's")
    work = Path(tempfile.mkdtemp(prefix="swarmd-gateway-bench-"))
    (work / "spend").mkdir()
    profile = work / "gateway.prof"
    children: list[subprocess.Popen[str]] = []
    started = time.perf_counter()
    try:
        upstream, urls = start_child(["--serve-upstream", "--upstream", args.upstream, "--turns", str(turns),
                                      "--tokens", str(args.tokens), "--delay", str(args.delay), "--gap",
                                      str(args.gap), "--prompt-kb", str(args.prompt_kb)])
        children.append(upstream)
        target = urls["light"] if args.upstream == "light" else urls["scripted"]
        gateway, ready = start_child(["--serve-gateway", target, "--spend", str(work / "spend"), "--agents",
                                      str(args.agents)] + (["--profile-out", str(profile)] if args.profile else []))
        children.append(gateway)
        pids = {"gateway": gateway.pid, "upstream": upstream.pid}
        runs = asyncio.run(bench(args, cases, bodies, urls, ready["bases"], pids))
        loads = list(dict.fromkeys(load for load, _, _ in runs))
        print()
        print("\n".join(table(runs, loads, cases)))
        print()
        print("\n".join(targets(runs, loads, cases)))
        for child in reversed(children):
            stop_child(child)
        children.clear()
        if args.profile and profile.exists():
            print("\nthe gateway's thread under cProfile, all runs (its figures above are slowed by it):")
            print("\n".join(hot_spots(profile)))
        print(f"\ntotal {time.perf_counter() - started:.0f} s; load average at the end: {load_average()}")
    finally:
        for child in children:
            stop_child(child)
        shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
