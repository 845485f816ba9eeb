"""Tracebacks of unexpected errors the daemon survived, in `.git/swarm/errors.log`.

Modules log with `logging.getLogger(__name__).exception(...)` (stdlib logging, so nothing here is
module-level state of swarmd's own); the daemon attaches a file handler for as long as it runs, and
a one-line message elsewhere (an attempt's reason, the live log) names the file.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from swarmd.layout import ERRORS_LOG


def errors_log(swarm_dir: Path) -> Path:
    return swarm_dir / ERRORS_LOG


@contextmanager
def errors_to_file(swarm_dir: Path) -> Iterator[Path]:
    """While the block runs, every error logged under the `swarmd` logger, traceback included, is
    appended to `.git/swarm/errors.log`; yields that path."""
    path = errors_log(swarm_dir)
    path.parent.mkdir(parents=True, exist_ok=True)
    handler = logging.FileHandler(path, encoding="utf-8")
    handler.setLevel(logging.ERROR)
    handler.setFormatter(logging.Formatter("%(asctime)s %(threadName)s %(name)s: %(message)s"))
    logger = logging.getLogger("swarmd")
    logger.addHandler(handler)
    try:
        yield path
    finally:
        logger.removeHandler(handler)
        handler.close()
