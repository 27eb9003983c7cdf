"""Pure: targets, names as a container resolves them, and the hops of a path, judged from facts."""
