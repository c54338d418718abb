"""Adapters: the event store and its command records, Kafka (clients, the one consumer
engine, the command bus, the embedded broker) and the API-key store."""
