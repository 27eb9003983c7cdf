"""Reporters: the same report as text for people or JSON for machines."""
