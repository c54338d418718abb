"""A config's routes as code: adapters (built-ins and plug-ins), their conditions, the
retries of a failing message and the route's topics, shared by the orchestrator
(executions) and the reconciler (pipelines)."""
