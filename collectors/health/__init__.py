"""Application health probes: /health, /health/live, /health/ready and the pool block they may carry."""
