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
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from gatewaybench.children import start_child, stop_child
from gatewaybench.gateway_child import serve_gateway
from gatewaybench.payloads import Case, conversation, request_body
from gatewaybench.report import hot_spots, table, targets
from gatewaybench.runs import bench
from gatewaybench.upstream import serve_upstream
from hostinfo import load_average
from swarmbench.report import machine

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
