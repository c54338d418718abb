"""A config's routes as code: adapters (built-ins and plug-ins) and their conditions,
shared by the orchestrator (executions) and the reconciler (pipelines)."""
