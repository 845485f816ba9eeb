"""The built-in agent's workspace: its worktree, its role, and the limits its tools keep to.

Every path a tool takes is resolved inside the worktree through every symlink (`Workspace.inside`): a path
that leads outside it (absolute, `..`, or a symlink at any component) is refused, and so is anything under
`.git`, in any case (`.GIT` is `.git` on a case-insensitive filesystem).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from swarmd.agents.llm.exceptions import ToolError
from swarmd.tasks import Role


@dataclass
class Workspace:
    root: Path  # the worktree
    env: dict[str, str]  # the scrubbed environment shell commands run with
    role: str  # planner | worker | judge
    task_id: str  # "root" or e.g. "3.2"
    max_depth: int = 3  # limits.depth, for create_task
    shell_timeout: float = 600.0
    output_limit: int = 20_000  # characters of any tool's answer

    def __post_init__(self) -> None:
        self.root = Path(os.path.realpath(self.root))
        Role(self.role)  # a ValueError for a role that does not exist

    def inside(self, path: str) -> Path:
        """`path` (relative to the root, or absolute) resolved through every symlink, if it stays inside the
        root and out of `.git`; otherwise a ToolError that says why."""
        not_a_path = ToolError(f"{path!r} is not a path; give one relative to the worktree root, such as src/app.py")
        if not path.strip() or "\0" in path:
            raise not_a_path
        lexical = Path(os.path.normpath(self.root / path))
        try:
            real = Path(os.path.realpath(lexical))
        except ValueError:  # a lone surrogate no file name holds (`tools._arguments` refuses it first)
            raise not_a_path from None
        if not lexical.is_relative_to(self.root):
            raise ToolError(f"{path}: outside the worktree; give a path relative to its root, such as src/app.py")
        if not real.is_relative_to(self.root):
            raise ToolError(f"{path}: leads outside the worktree through a symlink (to {real}); "
                            "only what is inside it is yours")
        if ".git" in folded(lexical.relative_to(self.root).parts) + folded(real.relative_to(self.root).parts):
            raise ToolError(f"{path}: under .git, which is git's own; use git commands through `run` instead")
        return real

    def show(self, real: Path) -> str:
        return real.relative_to(self.root).as_posix()


def folded(parts: tuple[str, ...]) -> tuple[str, ...]:
    """Path parts as a case-insensitive filesystem (macOS's default) compares them: `.GIT` there is `.git`."""
    return tuple(part.casefold() for part in parts)
