"""The demo (``python -m demo``, ``make demo``): a throwaway PostgreSQL, Redis and business application,
driven by a load generator and watched by dbpulse, so a new user sees the whole job within a minute."""
