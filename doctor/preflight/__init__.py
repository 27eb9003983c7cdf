"""Checks of a compose file before a deploy."""
