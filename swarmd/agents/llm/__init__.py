"""The built-in LLM agent, `swarmd agent`: a litellm tool loop that plans, works or judges in its worktree.

`main` follows the agent contract; `loop` runs the conversation (run -> step -> query -> execute);
`model` is the only importer of litellm; `context` keeps the conversation within the window;
`transcript` records every step. `tools` is the table of what the model may do, with the file tools in
`files`, the shell in `shell`, and the confinement to the worktree in `workspace`; `planning` holds the
planner's create_task and update_task, checked against the rules its landing is held to
(`swarmd/plan_rules.py`)."""
