"""dbpulse's built-in web UI: server-rendered from the scheduler's latest snapshots."""
