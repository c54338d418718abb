"""The orchestrator: the route runtime that runs config executions (docs/orchestrator.md)."""
