"""The only code that reads the host: running probes into a snapshot, the Engine API, namespaces."""
