"""Redis collector: INFO, PING, sampled key prefixes (TTL discipline), queue lengths."""
