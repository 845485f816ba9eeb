"""The pieces of benchmarks/swarm.py, the benchmark of the swarm harness's own overhead against the flat
design (its docstring describes what is measured and how).

    measured     what one run measured (`Worker`, `Run`) and the worker scripts' own records
    scripts      the bash agent scripts every design runs, and the environment they read
    repos        the generated repository, set up for swarmd or for the flat design
    daemon_child the swarmd daemon alone in a child process (`swarm.py --child`), reporting in JSON
    daemon_run   one swarmd run: the child started, its report read, the outcome checked
    profiling    where the daemon's time went, from the child's cProfile data (`--profile`)
    flat_agent   one agent of the flat design (`swarm.py --flat-agent`)
    flat_run     one run of the flat design: its agents started together, their records read
    noise        other work on the machine: CPU pressure, waiting for a quiet moment, writing to disk
    report       the table of figures, from the run with the median parallelism
    targets      the targets the figures are held to

The child processes run the entry script by path (`ENTRY`), so they start as the benchmark itself does.
"""

from __future__ import annotations

from pathlib import Path

ENTRY = Path(__file__).resolve().parent.parent / "swarm.py"
RUN_TIMEOUT_S = 600  # one daemon child or one flat run; the whole benchmark should take minutes
