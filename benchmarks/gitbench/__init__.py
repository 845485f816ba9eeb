"""The pieces of benchmarks/git_layer.py, the benchmark of swarmd's git layer against the git command line
(its docstring describes the cases).

    timing           the samples of each timed operation and the small helpers every case times with
    bench            the generated repository with untimed helpers to prepare a case, and the task tree
    land_and_replay  cases (a), landing a one-file branch, and (b), replaying a 3-commit branch
    worktree_pool    case (c), a worktree ready for a new task
    task_commit      case (d), one .swarm/ task commit with its compare-and-swap
    cli_landing      the git command line's route for landing a branch with its task file, for case (e)
    writers          the writer processes of case (e), landing round by round
    sustained        case (e), sustained landings from several writers, and the check that none was lost
    report           the machine, what is timed, and the table of ratios against the targets
"""
