"""The only home of pygit2 and of the git command line in swarmd."""
