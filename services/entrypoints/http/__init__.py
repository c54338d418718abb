"""The HTTP API: seed-compatible routers in front of the command gateway (writes) and
the projections (reads)."""
