"""The HTTP API: seed-compatible routers in front of the command bus (writes, one submit
path: submit.py) and the projections (reads, one read-your-writes wait:
read_your_writes.py)."""
