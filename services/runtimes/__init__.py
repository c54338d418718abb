"""Runtimes: what each role does with what it reads — the command handler's batches, the
relay, the projector, the route runtime shared by the orchestrator and the reconciler."""
