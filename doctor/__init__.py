"""docker-doctor: a troubleshooting expert system for Docker networking."""

__version__ = "0.1.0"
PROG = "docker-doctor"  # the command's name, in messages
