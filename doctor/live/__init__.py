"""The only code that sends packets: connects, probes from a container's namespace, the outside client."""
