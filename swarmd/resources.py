"""Files that ship with swarmd: `prompts/`, `templates/` and `hooks/` at the top of the repository,
mapped into the wheel as `swarmd/prompts`, `swarmd/templates` and `swarmd/hooks` (see pyproject.toml)."""

from __future__ import annotations

from importlib import resources
from importlib.resources.abc import Traversable
from pathlib import Path

FOLDERS = ("prompts", "templates", "hooks")


def resource(folder: str, name: str) -> Traversable:
    if folder not in FOLDERS:
        raise ValueError(f"no resource folder {folder!r}")
    installed = resources.files("swarmd").joinpath(folder, name)
    if installed.is_file():
        return installed
    # A source checkout run without installing: the folders sit beside the package.
    return Path(__file__).resolve().parent.parent / folder / name


def read_text(folder: str, name: str) -> str:
    return resource(folder, name).read_text(encoding="utf-8")
