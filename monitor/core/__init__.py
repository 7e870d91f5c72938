"""The shared core: samples, the metric catalogue, redaction, the poller protocol, scheduling.

Sources (``collectors/``) and the service (``monitor/``) import it; it imports neither.
"""
