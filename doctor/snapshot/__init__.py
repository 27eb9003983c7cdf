"""A snapshot: the raw artifacts of one reading of the host, the same live, in a bundle or a fixture."""
