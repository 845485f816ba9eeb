"""Agent prompts, rendered from the templates in `prompts/`; a repository overrides any template with
its own `.swarm/prompts/<name>.md` in the working tree."""

from __future__ import annotations

import functools
from pathlib import Path
from typing import Any

import jinja2

from swarmd import resources
from swarmd.errors import UsageError
from swarmd.layout import SWARM_DIR


def render(name: str, workdir: Path, context: dict[str, Any]) -> str:
    override = workdir / SWARM_DIR / "prompts" / f"{name}.md"
    source = override if override.is_file() else None
    text = override.read_text(encoding="utf-8") if source else resources.read_text("prompts", f"{name}.md")
    try:
        return _compiled(text).render(**context)
    except jinja2.TemplateError as exc:
        where = f"{SWARM_DIR}/prompts/{name}.md" if source else f"the built-in prompt {name}.md"
        line = f" line {exc.lineno}" if getattr(exc, "lineno", None) else ""
        raise UsageError(f"{where}:{line} cannot be rendered: {exc}") from None


@functools.lru_cache(maxsize=16)
def _compiled(text: str) -> jinja2.Template:
    """A template compiled once per text (about 9 ms each), not once per agent; an edited override
    is new text, so it takes effect at the next agent's start."""
    env = jinja2.Environment(undefined=jinja2.StrictUndefined, keep_trailing_newline=True, autoescape=False)
    return env.from_string(text)
