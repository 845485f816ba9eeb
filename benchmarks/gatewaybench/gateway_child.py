"""The gateway's process (`gateway.py --serve-gateway UPSTREAM`): swarmd.gateway's Gateway on its thread,
with a Spend in a temporary folder and one route to the upstream, in a process whose main thread only
waits, standing in for the daemon. It prints the agents' base URLs as JSON; with `--profile-out` its
thread runs under cProfile.

swarmd is imported only in the child, when it starts."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path


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
