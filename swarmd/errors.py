"""The one error base of swarmd.

    SwarmError            exit 1: something went wrong that the user can act on
    ├── UsageError        exit 2: bad input (a repository, a config file, a task file, an argument)
    │   └── ValidationError   several problems at once, one line each
    ├── GitError          exit 1: a git operation failed for a reason other than bad input
    └── PoolExhausted     exit 1: every pooled worktree is in use (swarmd.git.pool)

Only the CLI turns these into exit codes; every message says what to do next.
"""

from __future__ import annotations


class SwarmError(Exception):
    exit_code = 1


class UsageError(SwarmError):
    exit_code = 2


class ValidationError(UsageError):
    """Problems found in input, each one line naming the file, the field and the value."""

    def __init__(self, problems: list[str]) -> None:
        self.problems = problems
        super().__init__("\n".join(problems))


class GitError(SwarmError):
    pass
