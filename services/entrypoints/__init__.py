"""Entry points: the roles a process plays, the HTTP API by family, the CLI."""
