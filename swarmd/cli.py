"""The `swarmd` command. Commands stay thin: parse, call one function, print. This is the only place
where errors become exit codes."""

from __future__ import annotations

import sys
from pathlib import Path

import click

from swarmd import __version__
from swarmd.errors import SwarmError, ValidationError


class _Group(click.Group):
    def invoke(self, ctx: click.Context) -> object:
        try:
            return super().invoke(ctx)
        except ValidationError as exc:
            for problem in exc.problems:
                click.echo(f"swarmd: {problem}", err=True)
            sys.exit(exc.exit_code)
        except SwarmError as exc:
            click.echo(f"swarmd: {exc}", err=True)
            sys.exit(exc.exit_code)


@click.group(cls=_Group, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="swarmd")
@click.option(
    "-C", "directory", type=click.Path(file_okay=False, path_type=Path), default=".",
    help="Run as if swarmd was started in this folder.",
)
@click.pass_context
def cli(ctx: click.Context, directory: Path) -> None:
    """swarmd runs planners, workers and a judge of coding agents on one git repository."""
    ctx.obj = directory.resolve()


def _set_directory(ctx: click.Context, param: click.Parameter, value: Path | None) -> None:
    if value is not None:
        ctx.obj = value.resolve()


# `-C DIR` is accepted after the command too (`swarmd status -C DIR`), as git users expect.
directory_option = click.option(
    "-C", "directory", type=click.Path(file_okay=False, path_type=Path), default=None, expose_value=False,
    callback=_set_directory, help="Run as if swarmd was started in this folder.",
)


@cli.command(short_help="Set up swarmd here: .swarm/, .git/swarm/ and the integration branch.")
@click.option("--goal", help="What the swarm should achieve; written to .swarm/goal.md.")
@click.option("--branch", help="The integration branch to create (default: swarm/main).")
@click.option("--model", help="The model every role uses, e.g. anthropic/claude-sonnet-4-5 (a litellm model string "
              "for the built-in agent; the CLI's own name for a backend's).")
@click.option("--agent", type=click.Choice(["builtin", "claude-code", "codex", "aider", "qwen-code"]),
              help="Which agent plays every role (default: builtin, swarmd's own).")
@directory_option
@click.pass_obj
def init(start: Path, goal: str | None, branch: str | None, model: str | None, agent: str | None) -> None:
    """Set up swarmd in this repository: .swarm/ files, .git/swarm/ and the integration branch."""
    from swarmd.init import init as run_init

    report = run_init(start, goal=goal, branch=branch, model=model, agent=agent)
    if not report.created:
        click.echo(f"swarmd is already set up here (branch {report.branch} at {report.tip[:10]}); nothing changed.")
        return
    click.echo(f"swarmd set up in {report.workdir}:")
    for line in report.created:
        click.echo(f"  created {line}")
    click.echo(
        "\nThe .swarm/ folder in your working tree is yours: commit config.yaml and goal.md on your branch\n"
        "to share them, or add `.swarm/` to .git/info/exclude to keep them private. swarmd never commits\n"
        f"on your branch; its work goes to {report.branch}, its runtime state to .git/swarm/.\n"
        "\nNext:\n"
        "  1. describe the goal in .swarm/goal.md\n"
        + ("  2. export the model's key in swarmd's environment, in the provider's usual variable (e.g.\n"
           "     ANTHROPIC_API_KEY, OPENAI_API_KEY) or the one agents.<role>.api_key_env names: swarmd's\n"
           "     gateway holds it, agents never see it; the run's budget is budget.run (default $20)\n"
           if model or agent not in (None, "builtin") else
           "  2. choose the built-in agent's model for each role in .swarm/config.yaml (agents.<role>.model,\n"
           "     and api_key_env: the variable that holds its key), or name agents.<role>.command for an\n"
           "     agent of your own (docs/agent-contract.md)\n")
        + "  3. `swarmd check`, then `swarmd start`; afterwards `swarmd merge` brings the work into your branch"
    )


@cli.command(short_help="Validate the config and the task tree; say what start would refuse.")
@directory_option
@click.pass_obj
def check(start: Path) -> None:
    """Validate .swarm/config.yaml and the task tree at the integration tip."""
    from swarmd.check import check as run_check

    click.echo(run_check(start).summary())


@cli.command(short_help="Run the swarm: planners, workers and the judge, cycle after cycle.")
@click.option("--cycles", type=click.IntRange(min=1), help="Stop after this many cycles (default: until the judge says stop).")
@click.option("--max-workers", type=click.IntRange(min=1), help="Run at most this many workers at once (overrides limits.workers).")
@click.option("--detach", is_flag=True, help="Run in the background; `swarmd stop` stops it.")
@directory_option
@click.pass_obj
def start(start: Path, cycles: int | None, max_workers: int | None, detach: bool) -> None:
    """Run the swarm here: planners, workers and the judge, cycle after cycle."""
    from swarmd.daemon import control

    if detach:
        pid, log = control.detach(start, cycles, max_workers)
        click.echo(f"swarmd is running in the background (pid {pid}); its log: {log}\n`swarmd stop` stops it.")
        return
    sys.exit(control.run_foreground(start, cycles, max_workers, say=lambda line: click.echo(line)))


@cli.command(short_help="Stop the daemon running in this repository.")
@click.option("--timeout", default=30.0, show_default=True, help="Seconds to wait for the daemon to exit.")
@directory_option
@click.pass_obj
def stop(start: Path, timeout: float) -> None:
    """Stop the daemon running in this repository (gracefully: agents get a few seconds)."""
    from swarmd.daemon import control

    click.echo(control.stop(start, timeout))


@cli.command(short_help="Merge what the swarm landed into your current branch.")
@directory_option
@click.pass_obj
def merge(start: Path) -> None:
    """Merge what the swarm landed on the integration branch into the branch checked out here, without
    the swarm's own bookkeeping under .swarm/ (git merge runs in your working tree, as you)."""
    from swarmd.take_home import take_home

    click.echo(take_home(start))


@cli.command(short_help="A real swarm of the built-in agent, with a scripted model, on a new repository.")
@click.option("--dir", "folder", type=click.Path(file_okay=False, path_type=Path),
              help="Where to make the demo repository (default: a new temporary folder).")
def demo(folder: Path | None) -> None:
    """Run a real swarm on a throwaway repository: the built-in agent in every role, talking to the scripted
    model server that ships with swarmd (no key, no network, no cost)."""
    from swarmd.demo import demo as run_demo

    run_demo(folder, say=click.echo)


@cli.command(short_help="The built-in LLM agent (run by the daemon; see docs/agent-contract.md).")
def agent() -> None:
    """The built-in LLM agent: follows the agent contract (SWARM_* variables, prompt and result files).
    The daemon runs it for every role whose `command` is null; it is not meant to be run by hand."""
    from swarmd.agents.llm.main import main as run_agent

    sys.exit(run_agent())


def _view(start: Path, as_json: bool, data_of, render) -> None:  # type: ignore[no-untyped-def]
    import json

    from swarmd.config import load_config
    from swarmd.git.repo import Repo

    repo = Repo.discover(start)
    data = data_of(repo, load_config(repo.workdir))
    if as_json:
        click.echo(json.dumps(data, indent=2, default=str))
        for problem in getattr(data, "problems", ()):  # views.TaskRows: the task files `tasks` could not read
            click.echo(f"swarmd: {problem}", err=True)
    else:
        render(data)


json_option = click.option("--json", "as_json", is_flag=True, help="Print JSON (alone on stdout) instead of text.")


@cli.command(short_help="The daemon, the cycle, tasks, agents, spending and the pool.")
@json_option
@click.option("--disk", is_flag=True, help="Also measure the worktree pool's size on disk (slower on big repositories).")
@directory_option
@click.pass_obj
def status(start: Path, as_json: bool, disk: bool) -> None:
    """The daemon, the cycle, task counts, running agents, spending, paused roles and the worktree pool."""
    from swarmd import views

    _view(start, as_json, lambda repo, config: views.status(repo, config, disk), views.render_status)


@cli.command(short_help="The task tree with statuses.")
@json_option
@directory_option
@click.pass_obj
def tasks(start: Path, as_json: bool) -> None:
    """The task tree with statuses."""
    from swarmd import views

    _view(start, as_json, views.tasks, views.render_tasks)


@cli.command(short_help="One task: description, attempts, handoff, log tail, the agent's last steps.")
@click.argument("task_id")
@json_option
@directory_option
@click.pass_obj
def show(start: Path, task_id: str, as_json: bool) -> None:
    """One task: its description, attempts, handoff, the tail of its agent's log, and the built-in agent's
    last steps (from its transcript)."""
    from swarmd import views

    _view(start, as_json, lambda repo, config: views.show(repo, config, task_id), views.render_show)


@cli.command(name="log", short_help="One line per closed cycle: verdict, tasks, duration, cost.")
@json_option
@directory_option
@click.pass_obj
def log_(start: Path, as_json: bool) -> None:
    """One line per closed cycle: verdict, tasks done and failed, duration, cost."""
    from swarmd import views

    _view(start, as_json, views.log, views.render_log)


def main() -> None:
    cli(prog_name="swarmd")
