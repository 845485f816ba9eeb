"""swarmd: a local, git-native daemon for a hierarchy of coding agents."""

__version__ = "0.1.0"
