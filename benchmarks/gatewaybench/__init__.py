"""The pieces of benchmarks/gateway.py, the benchmark of the metering gateway's own cost against direct
calls to the same upstream (its docstring describes what is measured and how).

    payloads       what is sent and answered: the kinds of request (`Case`), the conversation every request
                   carries, the answer's text, the headers, which captured answer a request gets
    upstream       the upstream's process (`gateway.py --serve-upstream`): the scripted model server, its
                   answers captured once, and the light upstream that replays them
    gateway_child  the gateway on its thread in an otherwise idle process (`gateway.py --serve-gateway`)
    children       starting this script again as one of those two, and stopping it
    load           the client's side: agents, samples, the sequential, staggered and lockstep loads, and the
                   CPU each process spent during a run
    runs           the calibration, the byte-for-byte check, then every load, case and side in turn
    report         the progress lines, the table (medians, p90s, added, ratio, CPU), the targets and the
                   gateway's hot spots under `--profile`

The child processes run the entry script by path (`ENTRY`), so they start as the benchmark itself does.
"""

from __future__ import annotations

from pathlib import Path

ENTRY = Path(__file__).resolve().parent.parent / "gateway.py"
