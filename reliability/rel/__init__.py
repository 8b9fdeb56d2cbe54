"""reliability/run's campaigns and their shared helpers (see reliability/run)."""
