"""Backends: a coding-agent CLI run as a swarmd agent, through the metering gateway.

    python -P -m swarmd.backends NAME      NAME: claude-code, codex, aider or qwen-code

An adapter reads the assignment (the SWARM_* variables, the prompt, the role's settings), points its CLI at
`SWARM_GATEWAY_URL` with `SWARM_GATEWAY_TOKEN` as its key, runs it once, non-interactively, in the
worktree, and turns what it printed into the result file. The parts they all share are in `common.py`
(the assignment, the result, exit statuses) and `process.py` (running the CLI); what differs per CLI is in
`claude_code.py`, `codex.py`, `aider.py` and `qwen_code.py`. docs/backends.md is the user's guide.

Exit status: 0 done; 1 the attempt failed (a spent budget included); 78 the role is misconfigured (the
CLI is not installed, the gateway refused the key, the model is unknown); 2 not started as the contract
says. The last line printed says why.
"""

# The backend's name (the `backend` setting) -> its module under swarmd.backends.
BACKENDS = {"claude-code": "claude_code", "codex": "codex", "aider": "aider", "qwen-code": "qwen_code"}
