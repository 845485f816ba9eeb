"""Keeping the conversation under the model's context window. A tool loop re-sends everything at each
step, and tool output is most of it: the oldest tool output is elided first; the system prompt and the
task (the first two messages) and the newest exchange never are."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

ELIDED = "[elided: {size} characters of old tool output, to keep the conversation within the context window. " \
         "Run the tool again if you need it.]"
MARGIN = 0.05  # of the window, for the count's error and the provider's own framing
KEEP = 2  # the system prompt and the task


class WindowFull(Exception):
    """Nothing is left to elide and the conversation still does not fit."""


def budget(window: int, max_tokens: int) -> int:
    """The tokens a request may hold: the window less the reply's room and a margin."""
    return max(1, int(window * (1 - MARGIN)) - max_tokens)


def fit(messages: list[dict[str, Any]], limit: int, count: Callable[[list[dict[str, Any]]], int]) -> int:
    """Elide old tool output, oldest first, until `count(messages)` is at most `limit`; in place.
    Returns how many outputs were elided. The newest message is never elided: the model is answering it."""
    elided = 0
    size = count(messages)
    candidates = (i for i in range(KEEP, len(messages) - 1)
                  if messages[i].get("role") == "tool" and not _is_elided(messages[i]))
    while size > limit:
        index = next(candidates, None)
        if index is None:
            raise WindowFull(
                f"the conversation needs {size} tokens and the model takes {limit} (its context window less "
                f"max_tokens); nothing is left to elide. Set a larger context_window or a model with one")
        content = messages[index].get("content") or ""
        messages[index] = {**messages[index], "content": ELIDED.format(size=len(content))}
        elided += 1
        size = count(messages)
    return elided


def _is_elided(message: dict[str, Any]) -> bool:
    return str(message.get("content", "")).startswith("[elided: ")
