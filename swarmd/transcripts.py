"""Reading an agent's `transcript.jsonl` (written by the built-in agent, `swarmd/agents/llm/transcript.py`)
for `swarmd show`: its last steps, one line each. Only the end of the file is read, so a transcript of a
long run costs what a short one does."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from swarmd.agents.llm.transcript import NAME as TRANSCRIPT

TAIL_BYTES = 256 * 1024
WIDTH = 160  # characters of one shown line


def last_steps(run_dir: Path, count: int = 12) -> list[str]:
    """The last `count` things the agent of a run did or was told, newest last; [] without a transcript."""
    try:
        with open(run_dir / TRANSCRIPT, "rb") as file:
            size = file.seek(0, 2)
            file.seek(max(0, size - TAIL_BYTES))
            lines = file.read().decode("utf-8", "replace").splitlines()
    except OSError:
        return []
    if size > TAIL_BYTES:
        lines = lines[1:]  # the first one was cut in the middle
    shown = []
    for line in lines:
        try:
            entry = json.loads(line)
        except ValueError:
            continue  # a line cut short by a kill
        if isinstance(entry, dict) and (text := _line(entry)):
            shown.append(_short(text))
    return shown[-count:]


def _line(entry: dict[str, Any]) -> str | None:
    kind, step = entry.get("kind"), entry.get("step")
    at = f"step {step}: " if step is not None else ""
    if kind == "message" and entry.get("role") == "assistant":
        calls = ", ".join(str(c.get("function", {}).get("name")) for c in entry.get("tool_calls") or [])
        said = str(entry.get("content") or "").strip()
        return f"{at}model: {said}" + (f" -> {calls}" if calls else "") if said or calls else None
    if kind == "message" and entry.get("role") == "user" and step is not None:
        return f"{at}told: {entry.get('content')}"
    if kind == "tool" and entry.get("name") != "finish":  # the finish entry says it whole
        return f"{at}{entry.get('name')}({entry.get('arguments')}) = {entry.get('answer')}"
    if kind == "retry":
        return f"{at}retry {entry.get('tried')} in {entry.get('wait_s')} s: {entry.get('error')}"
    if kind == "elided":
        return f"{at}elided old tool output in {entry.get('messages')} messages to fit the context window"
    if kind == "finish":
        return f"{at}finish: {json.dumps(entry.get('result'), ensure_ascii=False)}"
    return None


def _short(text: str) -> str:
    flat = " ".join(text.split())
    return flat if len(flat) <= WIDTH else flat[:WIDTH - 3] + "..."
