"""Kafka: clients built from settings, the one batch-consumer engine every role runs on,
the command bus, and the embedded broker for dev and tests."""
