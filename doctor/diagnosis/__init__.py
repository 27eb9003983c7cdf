"""One diagnosis, start to end: probes, snapshot, facts, path, live checks, rules, report."""
