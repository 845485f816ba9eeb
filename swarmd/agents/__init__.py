"""Agents that ship with swarmd. `scripted`: a deterministic agent for the demo and the tests."""
