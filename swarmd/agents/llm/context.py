"""Keeping the conversation under the model's context window. A tool loop re-sends everything at each
step, and tool output (and the files a model wrote, in its calls' arguments) is most of it: the oldest is
elided first; the system prompt and the task (the first two messages) and the newest exchange never are.

Once the conversation is over the limit, eliding goes down to a low-water mark well under it, so the
next steps send the same prefix again and the provider's prompt cache keeps working, instead of an early
message changing at every step.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

ELIDED = "[elided: {size} characters of old tool output, to keep the conversation within the context window. " \
         "Run the tool again if you need it.]"
ELIDED_ARGUMENTS = "elided: {size} characters of old arguments, to keep the conversation within the context window"
MARGIN = 0.05  # of the window, for the count's error and the provider's own framing
LOW_WATER = 0.65  # of the limit: where eliding stops once it had to start
KEEP = 2  # the system prompt and the task
LONG_ARGUMENTS = 2_000  # characters of a call's arguments (a whole file written) worth eliding


class WindowFull(Exception):
    """Nothing is left to elide and the conversation still does not fit."""


def budget(window: int, max_tokens: int) -> int:
    """The tokens a request may hold: the window less the reply's room and a margin."""
    return max(1, int(window * (1 - MARGIN)) - max_tokens)


Count = Callable[[list[dict[str, Any]]], int]


def fit(messages: list[dict[str, Any]], limit: int, count: Count) -> int:
    """If `count(messages)` is over `limit`, elide old tool output and long call arguments, oldest first,
    down to the low-water mark; in place. Returns how many messages were changed. Each message is counted
    once: the total goes down by what eliding it saved."""
    size = count(messages)
    if size <= limit:
        return 0
    target = int(limit * LOW_WATER)
    changed = 0
    for index in range(KEEP, len(messages) - 1):  # the newest message is never elided: it is being answered
        if size <= target:
            break
        slimmer = _elided(messages[index])
        if slimmer is not None:
            size -= count([messages[index]]) - count([slimmer])
            messages[index] = slimmer
            changed += 1
    if size > limit:
        raise WindowFull(
            f"the conversation needs about {size} tokens and the model takes {limit} (its context window less "
            f"max_tokens); nothing is left to elide. Set a larger context_window, or a model with one")
    return changed


def _elided(message: dict[str, Any]) -> dict[str, Any] | None:
    """The message with its bulk elided, or None if there is nothing worth eliding in it."""
    if message.get("role") == "tool":
        content = str(message.get("content") or "")
        return None if content.startswith("[elided: ") else {**message, "content": ELIDED.format(size=len(content))}
    if message.get("role") == "assistant" and message.get("tool_calls"):
        calls, slimmed = [], False
        for call in message["tool_calls"]:
            arguments = call["function"]["arguments"]
            if len(arguments) > LONG_ARGUMENTS:
                note = json.dumps({"note": ELIDED_ARGUMENTS.format(size=len(arguments))})
                call = {**call, "function": {**call["function"], "arguments": note}}
                slimmed = True
            calls.append(call)
        return {**message, "tool_calls": calls} if slimmed else None
    return None
