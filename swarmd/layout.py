"""Where swarmd's files live. Paths under `.swarm/` are the same in the user's working tree and on the
integration branch; runtime state lives under `.git/swarm/` (see `Repo.swarm_dir`) and is never committed."""

SWARM_DIR = ".swarm"
CONFIG_PATH = ".swarm/config.yaml"  # in the user's working tree only
GOAL_PATH = ".swarm/goal.md"  # the user's, and a copy on the integration branch
TASKS_DIR = ".swarm/tasks"  # on the integration branch: one <id>.yaml a task
CYCLES_DIR = ".swarm/cycles"  # on the integration branch: NNNN.yaml a closed cycle
DEFAULT_BRANCH = "swarm/main"
# Branches swarmd makes for agents and keeps after attempts: no integration branch may live among them.
AGENT_BRANCHES = ("swarm/task/", "swarm/root/", "swarm/judge/", "swarm/verify", "swarm/failed/",
                  "swarm/crashed/", "swarm/stopped/", "swarm/stale/", "swarm/earlier/")
TIP_FILE = "tip"  # under .git/swarm/: the last commit swarmd wrote on the integration branch
ERRORS_LOG = "errors.log"  # under .git/swarm/: tracebacks of unexpected errors the daemon survived
# Task files on the integration branch and agents' result files larger than this are refused unread: a
# planner that writes a 50 MB task file must not make every later commit parse it.
MAX_FILE_BYTES = 1024 * 1024
