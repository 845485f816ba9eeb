"""The daemon: the cycle loop and what it drives (scheduler, runner, integration, recovery, verify)."""
