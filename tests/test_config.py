"""The config model, its commented template, and the files that ship inside the package."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

import swarmd
from swarmd import resources, store
from swarmd.config import Config, load_config
from swarmd.errors import ValidationError
from swarmd.tasks import validate_tree

EXAMPLE = Path(__file__).resolve().parent.parent / ".swarm.example"


def test_the_template_holds_exactly_the_defaults() -> None:
    template = resources.read_text("templates", "config.yaml")
    assert Config.model_validate(yaml.safe_load(template)) == Config()
    # every key in the template has a comment above it or on its section
    assert template.count("#") >= 15


def test_an_empty_config_file_means_the_defaults(tmp_path: Path) -> None:
    (tmp_path / ".swarm").mkdir()
    (tmp_path / ".swarm/config.yaml").write_text("# nothing set\n")
    assert load_config(tmp_path) == Config()


def test_a_command_string_is_split_like_a_shell_would(tmp_path: Path) -> None:
    (tmp_path / ".swarm").mkdir()
    (tmp_path / ".swarm/config.yaml").write_text("agents:\n  worker:\n    command: claude -p 'do it'\n    timeout: 60\n")
    assert load_config(tmp_path).agents.worker.command == ["claude", "-p", "do it"]


def test_a_role_set_without_timeout_or_left_empty_keeps_its_roles_default(tmp_path: Path) -> None:
    (tmp_path / ".swarm").mkdir()
    (tmp_path / ".swarm/config.yaml").write_text("limits:\nagents:\n  planner:\n  judge: {command: [j]}\n")
    config = load_config(tmp_path)
    assert (config.agents.judge.command, config.agents.judge.timeout) == (["j"], 900)
    assert config.model_copy(update={"agents": config.agents.model_copy(update={"judge": Config().agents.judge})}) == Config()


def test_every_problem_is_reported_at_once(tmp_path: Path) -> None:
    (tmp_path / ".swarm").mkdir()
    (tmp_path / ".swarm/config.yaml").write_text("limits: {workers: 0, planners: lots}\nmax_attempts: x\n")
    with pytest.raises(ValidationError) as refused:
        load_config(tmp_path)
    fields = sorted(p.split("`")[1] for p in refused.value.problems)
    assert fields == ["limits.planners", "limits.workers", "max_attempts"]


@pytest.mark.parametrize(("folder", "name"), [("prompts", "README.md"), ("templates", "config.yaml"), ("hooks", "README.md")])
def test_shipped_folders_are_found_from_the_installed_package(folder: str, name: str) -> None:
    found = resources.resource(folder, name)
    assert found.is_file()
    package = Path(swarmd.__file__).resolve().parent
    if "site-packages" in package.parts:  # an installed (not editable) package: CI installs it so
        assert Path(str(found)).resolve().is_relative_to(package)


def test_the_example_swarm_folder_is_valid_and_matches_the_templates() -> None:
    assert (EXAMPLE / "config.yaml").read_text() == resources.read_text("templates", "config.yaml")
    tasks = {}
    for path in sorted((EXAMPLE / "tasks").glob("*.yaml")):
        task = store.parse_task(path.read_bytes(), str(path))
        tasks[task.id] = task
        assert store.dump_task(task) == path.read_bytes(), f"{path.name} is in swarmd's own format"
    assert validate_tree(tasks, {}) == []
    for path in (EXAMPLE / "cycles").glob("*.yaml"):
        store.parse_cycle(path.read_bytes(), str(path))


def test_every_package_is_in_the_wheel() -> None:
    """A package missing from pyproject.toml's list installs nothing: `pip install .` would lose it."""
    import tomllib

    pyproject = Path(__file__).resolve().parent.parent / "pyproject.toml"
    listed = set(tomllib.loads(pyproject.read_text())["tool"]["setuptools"]["packages"])
    source = Path(__file__).resolve().parent.parent / "swarmd"
    found = {"swarmd." + ".".join(p.parent.relative_to(source).parts) for p in source.rglob("__init__.py")}
    found = {name.rstrip(".") for name in found}
    assert found <= listed, f"add {sorted(found - listed)} to [tool.setuptools] packages"
