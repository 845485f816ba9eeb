"""Worktrees given back: released one at a time on the pool's own thread, and waited for by an acquire
that finds no slot idle.

A release is a few small writes (more when the worktree must be cleaned), but on a disk busy with a
hundred agents' commits one can take half a second, and the daemon has landings to make. So the
daemon hands the worktree over (`put`) and goes on; the slot stays leased until its release is done.
An error on that thread leaves the slot leased, for `repair` at the next start: its traceback goes to
the `swarmd` logger (`.git/swarm/errors.log` while the daemon runs), one line of it to `on_error`.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass
from queue import SimpleQueue

from swarmd.layout import ERRORS_LOG

RETURN_PATIENCE_S = 60.0  # how long an acquire waits for a worktree given back before the pool counts as full

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Return:
    """A worktree given back: its slot, the commit to leave it at, and whether it is known clean there."""

    slot: str
    commit: str
    known_clean: bool


class Returns:
    def __init__(self, release: Callable[[Return], None], on_error: Callable[[str], None]) -> None:
        self._release = release
        self._on_error = on_error
        self._queue: SimpleQueue[Return | None] = SimpleQueue()
        self._changed = threading.Condition()
        self._pending = 0  # given back and not yet released
        self._done = 0  # ... and those released (or failed) since the pool was made
        self._thread: threading.Thread | None = None

    def put(self, item: Return) -> None:
        with self._changed:
            self._pending += 1
            if self._thread is None:
                self._thread = threading.Thread(target=self._loop, daemon=True, name="pool-returns")
                self._thread.start()
        self._queue.put(item)

    def done(self) -> int:
        """How many returns were handled so far: pass it to `wait`."""
        with self._changed:
            return self._done

    def wait(self, seen: int) -> bool:
        """Wait until a return is handled after `seen` (True at once if one was already); False at once
        if none is on its way, or after `RETURN_PATIENCE_S` without one."""
        with self._changed:
            if self._done == seen and not self._pending:
                return False
            return self._changed.wait_for(lambda: self._done != seen, timeout=RETURN_PATIENCE_S)

    def close(self) -> None:
        """Handle every return put so far, then stop the thread."""
        if self._thread is not None:
            self._queue.put(None)
            self._thread.join()
            self._thread = None

    def _loop(self) -> None:
        while (item := self._queue.get()) is not None:
            try:
                self._release(item)
            except Exception as exc:  # the thread must go on; the slot stays leased for `repair`
                log.exception("could not take back worktree %s", item.slot)
                self._on_error(f"could not take back worktree {item.slot}: {exc} "
                               f"(traceback in .git/swarm/{ERRORS_LOG})")
            finally:
                with self._changed:
                    self._pending -= 1
                    self._done += 1
                    self._changed.notify_all()
