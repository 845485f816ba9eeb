"""How a tool call ends other than with an answer (`loop.py` catches both):

    ToolError   a refusal or a failure: the model is told str(exc), and the loop goes on
    Finished    the finish tool: the agent is done, and .result is its handoff (or the judge's verdict)
"""

from __future__ import annotations

from typing import Any


class ToolError(Exception):
    """A refusal or failure the model is told about (str(exc) is the message); the loop goes on."""


class Finished(Exception):
    """Raised by the finish tool; .result is a dict: for planner/worker {summary, notes, concerns, follow_ups},
    for the judge {verdict, summary, notes}."""

    def __init__(self, result: dict[str, Any]) -> None:
        super().__init__(result["summary"])
        self.result = result
