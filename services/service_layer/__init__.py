"""The service layer: a batch of commands decided on one unit of work (the decider), the
handlers by aggregate, and what is derived from stored events (replies, outbox)."""
