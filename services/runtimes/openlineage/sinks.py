"""Where the emitter's RunEvents go (`Settings.lineage_sink`). `emit` returns once the sink
acknowledged the event and raises when it did not, so the emitter moves its position only
past events that arrived.

- `http`: the client's own HttpTransport (openlineage-python, a `requests` session with
  its retries), run off the event loop. Its `emit` raises for every answer but 2xx. An
  answer refusing the event itself (`REFUSED`: 400, 413, 422) will not change however
  often the same event is sent, so it is logged and skipped (`refused` counts them);
  anything else (401, 404, 5xx, no connection) is retried with the emitter's backoff:
  a wrong key or URL stops the flow until it is fixed instead of losing it.
- `kafka`: the client's KafkaTransport needs confluent-kafka, which this service does not
  carry; the event is the client's serialization (`Serde.to_json`) sent with the relay's
  own aiokafka producer and awaited, keyed as KafkaTransport keys run events
  (`run:<namespace>/<name>` of the root job, else the parent's, else the run's own) so one
  job's runs, and a replay's chain, stay in order in one partition.
- `console`: the client's ConsoleTransport (the event as JSON on its INFO log), for dev.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any, Final, Protocol

from openlineage.client.event_v2 import RunEvent
from openlineage.client.facet_v2 import parent_run
from openlineage.client.serde import Serde
from openlineage.client.transport.console import ConsoleConfig, ConsoleTransport
from openlineage.client.transport.http import HttpConfig, HttpTransport
from openlineage.client.transport.transport import Transport

from services.runtimes.relay import EnsureTopics, Sender
from services.settings import Settings

log = logging.getLogger(__name__)

REFUSED: Final = frozenset({400, 413, 422})
# The transport's own retries (urllib3) before the emitter's backoff takes over: few, so
# a stopping role is not held by a sink that is down.
HTTP_RETRY: Final = {"total": 2, "backoff_factor": 0.2}
HTTP_TIMEOUT_S: Final = 5.0


class Sink(Protocol):
    async def emit(self, event: RunEvent) -> None:
        """Return once the sink has the event; raise if it may not."""

    def close(self) -> None: ...


def serialized(event: RunEvent) -> bytes:
    """The client's JSON of the event (keys sorted: the same event, the same bytes)."""
    return Serde.to_json(event).encode("utf-8")


def message_key(event: RunEvent) -> str:
    """KafkaTransport's key of a run event."""
    parent = (event.run.facets or {}).get("parent")
    if isinstance(parent, parent_run.ParentRunFacet):
        job = parent.root.job if parent.root is not None else parent.job
        return f"run:{job.namespace}/{job.name}"
    return f"run:{event.job.namespace}/{event.job.name}"


class KafkaSink:
    def __init__(self, sender: Sender, topic: str, ensure_topics: EnsureTopics | None = None):
        self.sender = sender
        self.topic = topic
        self._ensure_topics = ensure_topics  # made sure of before the first send

    async def emit(self, event: RunEvent) -> None:
        if self._ensure_topics is not None:
            await self._ensure_topics([self.topic])
            self._ensure_topics = None
        ack = await self.sender.send(
            self.topic, value=serialized(event), key=message_key(event).encode("utf-8")
        )
        await ack

    def close(self) -> None:
        """The producer is the relay's: it stops it."""


class TransportSink:
    """One of the client's (synchronous) transports."""

    def __init__(self, transport: Transport) -> None:
        self.transport = transport
        self.refused = 0

    async def emit(self, event: RunEvent) -> None:
        try:
            await asyncio.to_thread(self.transport.emit, event)
        except Exception as error:
            status = _status_of(error)
            if status not in REFUSED:
                raise
            self.refused += 1
            log.error(
                "The lineage sink refused %s event of run %s (%s): skipped",
                event.eventType,
                event.run.runId,
                error,
            )

    def close(self) -> None:
        self.transport.close()


def _status_of(error: Exception) -> int | None:
    # requests' HTTPError carries the response (requests ships no type hints: duck-typed).
    response: Any = getattr(error, "response", None)
    status = getattr(response, "status_code", None)
    return status if isinstance(status, int) else None


def http_transport(settings: Settings) -> HttpTransport:
    if not settings.lineage_url:
        raise ValueError("PIPELINES_LINEAGE_SINK=http needs PIPELINES_LINEAGE_URL")
    key = settings.lineage_api_key
    auth = {} if key is None else {"type": "api_key", "apiKey": key.get_secret_value()}
    config = HttpConfig.from_dict(
        {
            "url": settings.lineage_url,
            "endpoint": settings.lineage_endpoint,
            "timeout": HTTP_TIMEOUT_S,
            "retry": HTTP_RETRY,
            "auth": auth,
        }
    )
    return HttpTransport(config)


def make_sink(
    settings: Settings, sender: Sender, ensure_topics: EnsureTopics | None = None
) -> Sink | None:
    """The configured sink; None when lineage is off."""
    match settings.lineage_sink:
        case "none":
            return None
        case "kafka":
            return KafkaSink(sender, settings.lineage_topic, ensure_topics)
        case "http":
            return TransportSink(http_transport(settings))
        case "console":
            return TransportSink(ConsoleTransport(ConsoleConfig()))
    raise ValueError(f"Unknown lineage sink {settings.lineage_sink!r}")


def dataset_namespace(settings: Settings) -> str:
    """`kafka://<host:port>` of the first bootstrap server (OpenLineage's naming for Kafka
    topics), unless one is configured."""
    if settings.lineage_dataset_namespace:
        return settings.lineage_dataset_namespace
    first = (settings.kafka_bootstrap_servers or "localhost:9092").split(",")[0].strip()
    return f"kafka://{first.split('://', 1)[-1]}"


__all__ = [
    "HTTP_RETRY",
    "REFUSED",
    "KafkaSink",
    "Sink",
    "TransportSink",
    "dataset_namespace",
    "http_transport",
    "make_sink",
    "message_key",
    "serialized",
]
