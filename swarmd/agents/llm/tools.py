"""The built-in agent's tool table: the specs the model is given, and the execution of one call.

    execute     checks a call's arguments against its spec, runs its handler, and clips the answer
    specs       the tools a role has: the file tools (`files.py`), run (`shell.py`), finish, and for
                planners create_task and update_task (`planning.py`)

A tool refuses by raising ToolError, and finish ends the agent by raising Finished (`exceptions.py`); every
path is confined to the worktree by `Workspace` (`workspace.py`). Every answer is at most `output_limit`
characters: a longer one keeps its head and tail, with a line saying how much was cut between them.
"""

from __future__ import annotations

import json
import math
import re
import reprlib
from collections.abc import Callable
from pathlib import Path
from typing import Any

from swarmd import yamlio
from swarmd.agents.llm import planning
from swarmd.agents.llm.exceptions import Finished, ToolError
from swarmd.agents.llm.files import edit_file, list_files, read_file, search, write_file
from swarmd.agents.llm.shell import run
from swarmd.agents.llm.workspace import Workspace
from swarmd.errors import ValidationError
from swarmd.layout import TASKS_DIR
from swarmd.tasks import Judgement, Result, Role

__all__ = ["Finished", "ToolError", "Workspace", "clip", "execute", "specs"]


def specs(ws: Workspace) -> list[dict[str, Any]]:
    """The OpenAI function-tool schemas of the tools the workspace's role has."""
    tools = [*_FILE_TOOLS, _run_spec(ws), _JUDGE_FINISH if ws.role == Role.JUDGE else _FINISH]
    if ws.role == Role.PLANNER:
        tools += planning.SPECS
    return [{"type": "function", "function": tool} for tool in tools]


def execute(ws: Workspace, name: str, arguments: str) -> str:
    """Run one tool call: `arguments` is the model's raw JSON. Answers the text for the model; raises
    ToolError (told to the model) or Finished."""
    tools = {spec["function"]["name"]: spec["function"] for spec in specs(ws)}
    if name not in tools:
        raise ToolError(f"there is no tool {name!r}; the tools are {', '.join(tools)}")
    try:
        answer = HANDLERS[name](ws, **_arguments(name, arguments, tools[name]["parameters"]))
    except ToolError as exc:
        raise ToolError(clip(str(exc), ws.output_limit)) from None
    return clip(answer or "", ws.output_limit)


def clip(text: str, limit: int) -> str:
    """`text` if it fits in `limit` characters; otherwise its head and tail, and a line saying how much was cut."""
    if len(text) <= limit:
        return text
    keep = max(limit - 60, 2)
    head = keep // 2
    return f"{text[:head]}\n[... {len(text) - keep:,} characters cut ...]\n{text[len(text) - (keep - head):]}"


# -- finish, the planner's tools, and the table of handlers ----------------------------------------


def finish(ws: Workspace, **fields: Any) -> None:
    if not fields["summary"].strip():
        raise ToolError("`summary` is empty; say what you did")
    model = Judgement if ws.role == Role.JUDGE else Result
    try:
        result = yamlio.parse(model, fields, "finish")
    except ValidationError as exc:
        raise ToolError("\n".join(exc.problems)) from None
    raise Finished(result.model_dump(mode="json", exclude={"usage"}))


def create_task(ws: Workspace, **fields: Any) -> str:
    return _planning(ws, planning.create_task, fields)


def update_task(ws: Workspace, **fields: Any) -> str:
    return _planning(ws, planning.update_task, fields)


def _planning(ws: Workspace, tool: Callable[[Path, str, int, dict[str, Any]], str], fields: dict[str, Any]) -> str:
    folder = ws.inside(TASKS_DIR)
    if folder != ws.root / TASKS_DIR:
        raise ToolError(f"{TASKS_DIR} is a symlink in this worktree; task files must be in the folder itself")
    try:
        return tool(folder, ws.task_id, ws.max_depth, fields)
    except ValidationError as exc:
        problems = "\n".join(f"- {problem}" for problem in exc.problems)
        raise ToolError(f"nothing was written; fix every problem, then call it again:\n{problems}") from None


HANDLERS: dict[str, Callable[..., str | None]] = {
    "read_file": read_file, "write_file": write_file, "edit_file": edit_file, "list_files": list_files,
    "search": search, "run": run, "finish": finish, "create_task": create_task, "update_task": update_task,
}


# -- specs -------------------------------------------------------------------------------------------


def _function(name: str, description: str, required: dict[str, Any], optional: dict[str, Any] | None = None
              ) -> dict[str, Any]:
    return {"name": name, "description": description, "parameters": {
        "type": "object", "properties": {**required, **(optional or {})}, "required": list(required),
        "additionalProperties": False,
    }}


def _text_arg(description: str) -> dict[str, str]:
    return {"type": "string", "description": description}


def _texts_arg(description: str) -> dict[str, Any]:
    return {"type": "array", "items": {"type": "string"}, "description": description}


_PATH = _text_arg("Path relative to the worktree root, such as src/app.py.")
_GLOB = _text_arg("Only files matching this glob: on the file name when it has no / (such as *.py), otherwise "
                  "on the path from the worktree root (such as tests/test_*.py).")
_FILE_TOOLS = [
    _function("read_file", "Read a text file of the worktree, with line numbers. Give start_line and end_line "
              "(1-based, inclusive) to read part of a long file; an answer too long is cut, and says where to "
              "go on.", {"path": _PATH},
              {"start_line": {"type": "integer", "description": "First line to show (default 1)."},
               "end_line": {"type": "integer", "description": "Last line to show (default: the last)."}}),
    _function("write_file", "Create a file, or replace all of its content. Missing folders on the way are "
              "created. To change part of a file, use edit_file.",
              {"path": _PATH, "content": _text_arg("The whole new content of the file.")}),
    _function("edit_file", "Replace one exact piece of text in a file. `old` must occur exactly once in the "
              "file, character for character (whitespace and indentation included): copy it from read_file's "
              "answer (without the line numbers), with enough lines around it to make it unique.",
              {"path": _PATH, "old": _text_arg("The exact text to replace, as it is in the file now."),
               "new": _text_arg("The text to put in its place (empty to delete it).")}),
    _function("list_files", "List the files under a folder of the worktree, recursively, as paths from the "
              "worktree root (.git left out).", {},
              {"path": _text_arg("The folder to list (default: the worktree root)."), "pattern": _GLOB}),
    _function("search", "Search the contents of text files with a regular expression (Python syntax), like "
              "git grep: answers each matching line as path:line: text. Binary files and .git are skipped.",
              {"pattern": _text_arg(r"The regular expression, such as `def main\(` or `TODO|FIXME`.")},
              {"path": _text_arg("The file or folder to search (default: the whole worktree)."), "glob": _GLOB}),
]
_FINISH = _function(
    "finish", "Finish your task, with your handoff for the planner who reads it. Call it once, last: nothing "
    "after it runs. What you left in the worktree is committed for you.",
    {"summary": _text_arg("What you did, and what is left if anything is.")},
    {"notes": _texts_arg("Anything the planner should know."), "concerns": _texts_arg("What might be wrong."),
     "follow_ups": _texts_arg("What someone should do next.")},
)
_JUDGE_FINISH = _function(
    "finish", "Give your verdict on the cycle, and finish. Call it once, last.",
    {"verdict": {"type": "string", "enum": ["continue", "stop"],
                 "description": "continue: another cycle of planning and work is worth it; stop: the goal is "
                                "met, or more cycles would not get closer to it."},
     "summary": _text_arg("What was achieved, and what is left.")},
    {"notes": _texts_arg("Advice for the next cycle's planners.")},
)


def _run_spec(ws: Workspace) -> dict[str, Any]:
    return _function(
        "run", "Run a shell command with bash in the worktree root, and answer its exit status and output "
        "(stdout and stderr together; a long output keeps its beginning and end). Use it to run tests and "
        "builds, look at git history (git log, git diff), move or delete files. stdin is empty, so nothing "
        "interactive works; the command and everything it started are killed when it ends or times out, so "
        "a server it starts does not outlive the call.",
        {"command": _text_arg("The command line, run as bash -c.")},
        {"timeout": {"type": "number",
                     "description": f"Seconds before it is killed (default and most: {ws.shell_timeout:g})."}},
    )


# -- checking the arguments ------------------------------------------------------------------------


def _arguments(name: str, raw: str, schema: dict[str, Any]) -> dict[str, Any]:
    """The call's arguments, checked against the tool's schema: every problem named at once. A whole number
    where text is wanted is taken as text (models send ids such as 3 as numbers)."""
    properties, required = schema["properties"], schema["required"]
    usage = f"{name}({', '.join(key if key in required else key + '?' for key in properties)})"
    try:
        given = json.loads(raw) if raw and raw.strip() else {}
    except json.JSONDecodeError as exc:
        raise ToolError(f"the arguments of {name} are not valid JSON ({exc}); send one JSON object: {usage}") from None
    except ValueError:  # Python's limit on the digits of an integer (4,300)
        raise ToolError(f"the arguments of {name} are not valid JSON here (a number with thousands of digits); "
                        f"send one JSON object: {usage}") from None
    except RecursionError:
        raise ToolError(f"the arguments of {name} are not valid JSON here (nested too deeply); "
                        f"send one JSON object: {usage}") from None
    if not isinstance(given, dict):
        raise ToolError(f"the arguments of {name} must be a JSON object of named arguments: {usage}")
    problems = [f"unknown argument `{_escaped(key)}`" for key in given if key not in properties]
    arguments: dict[str, Any] = {}
    for key, spec in properties.items():
        value = given.get(key)
        if value is None:  # left out, or null
            if key in required:
                problems.append(f"`{key}` is required")
            continue
        if spec["type"] == "string":
            value = _as_text(value)
        elif spec["type"] == "array" and isinstance(value, list):
            value = [_as_text(item) for item in value]
        problem = _type_problem(value, spec)
        if problem:
            problems.append(f"`{key}` {problem} (got {_SHORT.repr(value)})")
        problems += _text_problems(key, value)
        arguments[key] = value
    if problems:
        raise ToolError(f"{name}: {'; '.join(problems)}. It takes {usage}")
    return arguments


def _text_problems(key: str, value: Any) -> list[str]:
    """What in `value` (a text, or a list of texts) no file, command or transcript can hold: a lone surrogate
    anywhere (UTF-8 has no encoding for it), a NUL in a path, a command or a pattern. Anything else in a list
    is a type problem already, and is only ever quoted with its escapes."""
    if isinstance(value, list):
        return [problem for at, item in enumerate(value) if isinstance(item, str)
                for problem in _text_problems(f"{key}[{at}]", item)]
    if not isinstance(value, str):
        return []
    if surrogate := _SURROGATE.search(value):
        return [f"`{key}` is not valid Unicode text: a lone surrogate at character {surrogate.start() + 1} "
                "(escape a character beyond U+FFFF as its whole pair, such as \\ud83d\\ude00)"]
    if key in _NO_NUL and (nul := value.find("\0")) >= 0:
        return [f"`{key}` holds a NUL character at character {nul + 1}; no path, command or pattern can hold one"]
    return []


def _escaped(text: str) -> str:
    """`text` with any lone surrogate written as an escape, so that a message quoting it can be sent."""
    return text.encode("utf-8", "backslashreplace").decode("utf-8")


def _as_text(value: Any) -> Any:
    return str(value) if isinstance(value, int) and not isinstance(value, bool) else value


def _type_problem(value: Any, spec: dict[str, Any]) -> str | None:
    kind = spec["type"]
    if kind == "string" and not isinstance(value, str):
        return "must be text"
    if kind == "string" and "enum" in spec and value not in spec["enum"]:
        return f"must be one of {', '.join(spec['enum'])}"
    if kind == "integer" and (not isinstance(value, int) or isinstance(value, bool)):
        return "must be a whole number"
    if kind == "number" and (isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value)):
        return "must be a number"
    if kind == "array" and not (isinstance(value, list) and all(isinstance(item, str) for item in value)):
        return "must be a list of texts"
    return None


_SURROGATE = re.compile("[\ud800-\udfff]")
_NO_NUL = {"path", "command", "pattern"}
_SHORT = reprlib.Repr()
_SHORT.maxstring = _SHORT.maxother = 60
