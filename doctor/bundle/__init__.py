"""Support bundles: a redacted snapshot, container logs and a checkup, in one archive."""
