"""docker-doctor: a troubleshooting expert system for Docker networking."""

__version__ = "0.1.0"
