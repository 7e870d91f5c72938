"""HTTP: the Prometheus exposition, the probes, the web UI and the advice pages; TLS and basic auth."""
