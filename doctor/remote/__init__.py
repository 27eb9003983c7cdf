"""Diagnoses of other hosts: the diagnosis runs on the host itself, and its report shows here."""
