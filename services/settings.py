"""Process settings, read from the environment (prefix `PIPELINES_`)."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict

from contracts.topics import Topics


class Settings(BaseSettings):
    """Everything a role needs; nothing is read from the environment anywhere else."""

    model_config = SettingsConfigDict(env_prefix="PIPELINES_", extra="forbid")

    # Kafka. No bootstrap servers means: start the embedded broker (dev only).
    kafka_bootstrap_servers: str | None = None
    kafka_security_protocol: Literal["PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL"] = "PLAINTEXT"
    kafka_sasl_mechanism: str | None = None
    kafka_sasl_username: str | None = None
    kafka_sasl_password: str | None = None
    kafka_ssl_cafile: str | None = None
    kafka_ssl_certfile: str | None = None
    kafka_ssl_keyfile: str | None = None
    topic_prefix: str = "pipelines"
    partitions: int = Field(default=12, ge=1)
    replication_factor: int = Field(default=1, ge=1)
    consumer_group: str = "pipelines-command-handler"
    # How long a fetch may wait for data (aiokafka's fetch_max_wait_ms). None keeps
    # aiokafka's 500 ms: Apache Kafka answers a fetch as soon as data is there, so the
    # wait only bounds idle polling. The embedded broker holds every fetch for the whole
    # wait even when data arrives, so each consumer hop costs up to it: `pipelines dev`
    # sets a short one when it starts that broker (EMBEDDED_FETCH_WAIT_MS).
    kafka_fetch_wait_ms: int | None = Field(default=None, ge=1)
    # A consumer that fetched nothing for `kafka_idle_after_ms` fetches with this wait
    # instead, until records come again (services.adapters.kafka.fetch_pacing): short waits
    # while busy, few fetches while idle. None (Apache Kafka) keeps one wait; `pipelines
    # dev` sets one for the embedded broker (EMBEDDED_IDLE_FETCH_WAIT_MS).
    kafka_idle_fetch_wait_ms: int | None = Field(default=None, ge=1)
    kafka_idle_after_ms: int = Field(default=2000, ge=0)
    # The consumer-group session of the group roles (handler, projector); None keeps
    # aiokafka's 10 s. The embedded broker holds a join for about half a session (5 s at
    # 10 s), so `pipelines dev` sets 2 s there (EMBEDDED_SESSION_TIMEOUT_MS); Apache Kafka
    # refuses sessions under its group.min.session.timeout.ms (6 s by default).
    kafka_session_timeout_ms: int | None = Field(default=None, ge=1000)

    # Event store: sqlite:///path or postgresql://user@host:port/db
    event_store_url: str = "sqlite:///.data/pipelines.db"

    # Batching and limits.
    command_batch_max: int = Field(default=500, ge=1)
    command_batch_wait_ms: int = Field(default=20, ge=0)
    relay_batch_max: int = Field(default=1000, ge=1)
    # Relay/projector block (issue 11): how often the relay polls SQLite for events saved by
    # another process (a save in its own process wakes it at once; PostgreSQL's NOTIFY
    # too). An empty poll costs ~0.1-0.2 ms of CPU: 20 ms is ~1 % of a core when idle and
    # adds at most 20 ms to a cross-process save (services.runtimes.relay).
    relay_poll_interval_ms: int = Field(default=20, ge=1)
    max_message_bytes: int = Field(default=1024 * 1024, ge=1024)

    # The orchestrator (docs/orchestrator.md). A RunConfig is refused (503) unless an
    # orchestrator's heartbeat is younger than `orchestrator_liveness_s` and fewer config
    # executions are running than `max_running_executions` and than the live
    # orchestrators' capacities together (each advertises `orchestrator_capacity`).
    orchestrator_liveness_s: float = Field(default=10.0, gt=0)
    max_running_executions: int = Field(default=100, ge=1)
    orchestrator_sweep_ms: int = Field(default=500, ge=1)
    orchestrator_capacity: int = Field(default=100, ge=1)
    execution_storage_dir: str = ".data/executions"
    # Where route handlers store the messages replay reads (services.adapters.message_store):
    # `database`, the event store's (shared by every orchestrator, and measured no slower,
    # docs/orchestrator.md), or `files` under execution_storage_dir (one machine only).
    message_store: Literal["files", "database"] = "database"
    # A replay of more messages than this is refused unless the command says
    # `allow_large` (docs/replay.md): an accidental replay of a huge execution re-runs
    # every adapter's side effects.
    replay_max_messages: int = Field(default=10_000, ge=1)
    # The relay's replay publisher sends a replay's messages this many at a time, saving
    # its position after each batch's acknowledgements.
    replay_batch_max: int = Field(default=500, ge=1)
    # Config executions created before this instant are interrupted by the orchestrator's
    # sweep: `pipelines dev` sets it to when its embedded broker started, since that broker
    # keeps nothing across a restart and the messages they waited for are gone.
    orchestrator_interrupt_before: datetime | None = None
    # A config's route workers stop after its last live execution finished this long ago.
    orchestrator_worker_idle_s: float = Field(default=30.0, ge=0)
    # The route workers' consumer-group session. Apache Kafka refuses sessions below its
    # group.min.session.timeout.ms (6 s by default); the embedded broker (Tansu) holds a
    # group join for about a session, so a short one makes joins fast there.
    orchestrator_session_timeout_ms: int = Field(default=10_000, ge=1000)
    # A run (config execution or pipeline run) created from now on gets its deadline this
    # long after its creation (the orchestrator's sweep times config executions out past
    # it). A run keeps the deadline it was created with when this changes.
    execution_timeout_s: float = Field(default=21 * 24 * 3600, gt=0)

    # The reconciler (docs/reconciler.md): it sweeps the pipelines not at rest every
    # `reconciler_sweep_ms`; a deployment whose route consumers are not all assigned
    # `reconciler_provisioning_timeout_s` after Provisioning began stops with
    # AutomatonProvisioningTimeout (Feldera's local runner default, 20 s).
    reconciler_sweep_ms: int = Field(default=1000, ge=1)
    reconciler_provisioning_timeout_s: float = Field(default=20.0, ge=0)

    # HTTP API (the `api` role). Port 0 binds a free port.
    api_host: str = "127.0.0.1"
    api_port: int = Field(default=8080, ge=0, le=65535)
    api_result_timeout_s: float = Field(default=10.0, gt=0)
    # How long the API trusts a verified key without asking the database again: a key
    # revoked elsewhere (the CLI, another API process) keeps working for up to this long.
    # 0 checks every request against the database.
    api_key_cache_ttl_s: float = Field(default=5.0, ge=0)
    # The secret that signs stream tokens (docs/watch.md). Unset: random per API process,
    # so a token works only on the process that issued it; give every API process behind
    # one load balancer the same one.
    api_stream_token_secret: SecretStr | None = None

    # OpenLineage out (docs/lineage.md): the relay role emits a RunEvent for every start
    # and end of a config execution or pipeline run to `lineage_sink` (none: off): a Kafka
    # topic (`lineage_topic`, through this service's brokers) or an HTTP endpoint such as
    # Marquez's (`lineage_url` + `lineage_endpoint`, with `lineage_api_key` as bearer).
    # Jobs are named in `lineage_namespace`; topics in `lineage_dataset_namespace`, by
    # default `kafka://<first bootstrap server>` (set it when that address changes, as the
    # embedded broker's port does on every `pipelines dev`).
    lineage_sink: Literal["none", "kafka", "http", "console"] = "none"
    lineage_namespace: str = Field(default="pipelines", min_length=1)
    lineage_topic: str = Field(default="openlineage.events", min_length=1)
    lineage_url: str | None = None
    lineage_endpoint: str = "api/v1/lineage"
    lineage_api_key: SecretStr | None = None
    lineage_dataset_namespace: str | None = None

    # Observability (docs/operations.md). Metrics are always counted (per batch); they are
    # served on the API's GET /metrics (open to all unless `api_metrics` is false) and, by
    # any role, on `metrics_port` (None: no port; 0: a free one). Tracing `console` prints
    # spans; `otlp` sends them to `tracing_otlp_endpoint` (else the OTEL_EXPORTER_OTLP_*
    # variables) and needs opentelemetry-exporter-otlp-proto-http. Logs: `text` for people,
    # `json` one object a line with the correlation ids.
    metrics_port: int | None = Field(default=None, ge=0, le=65535)
    metrics_host: str = "127.0.0.1"
    api_metrics: bool = True
    tracing: Literal["none", "console", "otlp"] = "none"
    tracing_service_name: str = Field(default="pipelines", min_length=1)
    tracing_otlp_endpoint: str | None = None
    log_format: Literal["text", "json"] = "text"

    # Retention (docs/operations.md, "Retention"): how long what would otherwise grow
    # forever is kept; 0 keeps it forever. The relay role sweeps the processed-command
    # records (dedupe inside this window), the orchestrator role an execution's stored
    # route messages and its ledger together (replay inside this window) and the heartbeats
    # of orchestrators that died without a goodbye. A round removes at most
    # `retention_batch` rows (or executions), in short transactions, every
    # `retention_interval_s`.
    retention_command_records_s: float = Field(default=7 * 86400.0, ge=0)
    retention_route_messages_s: float = Field(default=30 * 86400.0, ge=0)
    retention_heartbeats_s: float = Field(default=86400.0, ge=0)
    retention_interval_s: float = Field(default=60.0, gt=0)
    retention_batch: int = Field(default=500, ge=1, le=10_000)

    @property
    def topics(self) -> Topics:
        return Topics(prefix=self.topic_prefix)

    def kafka_client_options(self) -> dict[str, Any]:
        """Options passed through to every aiokafka client (security included)."""
        options: dict[str, Any] = {
            "bootstrap_servers": self.kafka_bootstrap_servers,
            "security_protocol": self.kafka_security_protocol,
        }
        if self.kafka_sasl_mechanism:
            options["sasl_mechanism"] = self.kafka_sasl_mechanism
            options["sasl_plain_username"] = self.kafka_sasl_username
            options["sasl_plain_password"] = self.kafka_sasl_password
        if self.kafka_security_protocol in ("SSL", "SASL_SSL"):
            from aiokafka.helpers import create_ssl_context

            options["ssl_context"] = create_ssl_context(
                cafile=self.kafka_ssl_cafile,
                certfile=self.kafka_ssl_certfile,
                keyfile=self.kafka_ssl_keyfile,
            )
        return options
