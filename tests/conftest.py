"""Fixtures: real git repositories in temporary folders, with HOME and the git identity isolated; the
scripted model server as a gateway's upstream, and gateways on it."""

from __future__ import annotations

from pathlib import Path

from collections.abc import Callable, Iterator

import pytest
from gatewayutil import ENV, Upstream
from gitutil import git, write

from swarmd.gateway.routes import Route
from swarmd.gateway.server import Gateway, Refused
from swarmd.gateway.spend import Budgets, Spend


@pytest.fixture(autouse=True)
def isolated_home(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch) -> Path:
    home = tmp_path_factory.mktemp("home")
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.setenv("XDG_CONFIG_HOME", str(home / ".config"))
    monkeypatch.setenv("GIT_CONFIG_NOSYSTEM", "1")
    monkeypatch.setenv("GIT_AUTHOR_NAME", "Test Person")
    monkeypatch.setenv("GIT_AUTHOR_EMAIL", "person@example.com")
    monkeypatch.setenv("GIT_COMMITTER_NAME", "Test Person")
    monkeypatch.setenv("GIT_COMMITTER_EMAIL", "person@example.com")
    for name in ("GIT_DIR", "GIT_WORK_TREE", "GIT_INDEX_FILE"):
        monkeypatch.delenv(name, raising=False)
    return home


@pytest.fixture
def repo_dir(tmp_path: Path) -> Path:
    """A repository with one commit on `main` and a clean working tree."""
    root = tmp_path / "repo"
    root.mkdir()
    git(root, "init", "-q", "-b", "main")
    write(root, {"README.md": "hello\n", "src/app.py": "print('hi')\n"})
    git(root, "add", "-A")
    git(root, "commit", "-q", "-m", "first")
    return root


@pytest.fixture
def upstream() -> Iterator[Upstream]:
    up = Upstream()
    up.server.start()
    yield up
    up.server.stop()


@pytest.fixture
def refusals() -> list[Refused]:
    return []


@pytest.fixture
def gateway(upstream: Upstream, refusals: list[Refused], tmp_path: Path) -> Iterator[Callable[..., Gateway]]:
    """Starts gateways (by default every role goes to the scripted server, keyed from ENV); stops them all."""
    started: list[Gateway] = []

    def start(budgets: Budgets = Budgets(), routes: dict[str, Route] | None = None,
              environ: dict[str, str] = ENV) -> Gateway:
        route = Route(api_base=upstream.server.openai_base, api_key_env="UPSTREAM_KEY")
        routes = routes or {role: route for role in ("planner", "worker", "judge")}
        gateway = Gateway(Spend(tmp_path, budgets), routes, environ, refusals.append)
        started.append(gateway)
        gateway.start()
        return gateway

    yield start
    for gateway in started:
        gateway.stop()
