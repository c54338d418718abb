"""Which Kafka-compatible broker the tests use: external, a testcontainer, or embedded."""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from typing import Literal

from services.embedded_broker import EmbeddedBroker

BrokerKind = Literal["external", "container", "embedded"]


def docker_answers() -> bool:
    """A quick ping; the docker client can be installed with no engine behind it."""
    try:
        import docker

        client = docker.from_env(timeout=3)
        try:
            return bool(client.ping())
        finally:
            client.close()
    except Exception:
        return False


@contextlib.contextmanager
def kafka_for_tests() -> Iterator[tuple[str, BrokerKind]]:
    external = os.environ.get("KAFKA_BOOTSTRAP_SERVERS", "").strip()
    if external:
        yield external, "external"
    elif docker_answers():
        from testcontainers.kafka import KafkaContainer

        with KafkaContainer() as container:
            yield container.get_bootstrap_server(), "container"
    else:
        with EmbeddedBroker() as broker:
            yield broker.bootstrap_servers, "embedded"
