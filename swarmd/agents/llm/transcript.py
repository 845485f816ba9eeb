"""The agent's transcript: every message, tool call, answer, retry and elision, one JSON object a line,
in the run's folder next to its log (`swarmd show ID` prints the last steps)."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

NAME = "transcript.jsonl"


class Transcript:
    def __init__(self, path: Path | None) -> None:
        self.path = path  # None: keep nothing (a test of the loop alone)

    def write(self, kind: str, **fields: Any) -> None:
        if self.path is None:
            return
        line = json.dumps({"time": round(time.time(), 3), "kind": kind, **fields}, default=str)  # ASCII: any text is safe
        with open(self.path, "a", encoding="utf-8") as out:  # appended and closed per line: a kill loses no step
            out.write(line + "\n")
