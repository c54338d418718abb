"""An OpenLineage HTTP endpoint of the test's own (what Marquez's `POST /api/v1/lineage`
is to the emitter): a threaded `http.server` on a free port that records every request
and answers 201, or the statuses queued in `answers` first (only what it answers 201
is recorded)."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import orjson


@dataclass(frozen=True)
class Received:
    path: str
    authorization: str | None
    body: bytes

    @property
    def event(self) -> Any:
        return orjson.loads(self.body)


@dataclass
class LineageEndpoint:
    url: str
    received: list[Received] = field(default_factory=list)
    answers: list[int] = field(default_factory=list)  # the next answers, then 201s
    lock: threading.Lock = field(default_factory=threading.Lock)

    def events(self, run_id: object, path: str | None = None) -> list[Any]:
        """The events received for run `run_id` (on `path`, if given), in order."""
        with self.lock:
            found = list(self.received)
        return [
            r.event
            for r in found
            if r.event["run"]["runId"] == str(run_id) and (path is None or r.path == path)
        ]

    def bodies(self, path: str) -> list[bytes]:
        with self.lock:
            return [r.body for r in self.received if r.path == path]


@contextmanager
def lineage_endpoint() -> Iterator[LineageEndpoint]:
    endpoint: LineageEndpoint | None = None

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            assert endpoint is not None
            body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
            with endpoint.lock:
                status = endpoint.answers.pop(0) if endpoint.answers else 201
                if status == 201:
                    auth = self.headers.get("Authorization")
                    endpoint.received.append(Received(self.path, auth, body))
            self.send_response(status)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, *_: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    endpoint = LineageEndpoint(f"http://127.0.0.1:{server.server_address[1]}")
    thread = threading.Thread(target=server.serve_forever, name="lineage-endpoint", daemon=True)
    thread.start()
    try:
        yield endpoint
    finally:
        server.shutdown()
        server.server_close()
        thread.join(5)
