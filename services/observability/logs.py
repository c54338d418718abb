"""Log lines with correlation ids: `text` for people (the default), `json` for machines.

Ids are kept in a context variable (`log_ids(command_id=..., execution_id=...)`), so
whatever logs inside the block — on this task, or in a thread it starts with
`asyncio.to_thread`, which copies the context — carries them: the command id and
correlation id while the decider decides a command or the API submits one, the execution
id, message id and correlation id while a route runs a message. A JSON line carries them
as fields; the text format is left as it was.

Standard library only: the CLI imports this before anything heavy.
"""

from __future__ import annotations

import json
import logging
from contextvars import ContextVar, Token
from datetime import UTC, datetime
from types import TracebackType
from typing import Final, Literal, TextIO

LogFormat = Literal["text", "json"]
TEXT_FORMAT: Final = "%(asctime)s %(levelname)s %(name)s: %(message)s"
ID_FIELDS: Final = ("command_id", "execution_id", "message_id", "correlation_id")

_IDS: ContextVar[dict[str, object]] = ContextVar("pipelines_log_ids", default={})  # noqa: B039


class log_ids:
    """`with log_ids(command_id=..., correlation_id=...):` — None values are left out; ids
    of an enclosing block stay unless named again. A class, not a generator, and values
    kept as given (made text when a line is written): the decider enters one per
    command."""

    __slots__ = ("_ids", "_token")

    def __init__(self, **ids: object) -> None:
        self._ids = ids
        self._token: Token[dict[str, object]] | None = None

    def __enter__(self) -> None:
        ids = self._ids
        if None in ids.values():
            ids = {name: value for name, value in ids.items() if value is not None}
        current = _IDS.get()
        self._token = _IDS.set({**current, **ids} if current else ids)

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        if self._token is not None:
            _IDS.reset(self._token)


def current_ids() -> dict[str, str]:
    return {name: str(value) for name, value in _IDS.get().items()}


class JsonFormatter(logging.Formatter):
    """One JSON object a line: time (UTC, RFC 3339), level, logger, message, the
    correlation ids in effect, and the exception's traceback if there is one."""

    def format(self, record: logging.LogRecord) -> str:
        line: dict[str, object] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        ids = getattr(record, "ids", None)
        for name, value in (ids if isinstance(ids, dict) else _IDS.get()).items():
            line[name] = str(value)
        if record.exc_info:
            line["exception"] = self.formatException(record.exc_info)
        if record.stack_info:
            line["stack"] = self.formatStack(record.stack_info)
        return json.dumps(line, default=str)


class IdsFilter(logging.Filter):
    """Copies the ids in effect onto each record (`record.ids`) where it is made, so a
    handler that formats later or elsewhere still sees them."""

    def filter(self, record: logging.LogRecord) -> bool:
        if not hasattr(record, "ids"):
            record.ids = _IDS.get()
        return True


def handler(log_format: LogFormat, stream: TextIO | None = None) -> logging.Handler:
    """A stream handler (stderr by default) writing `log_format`."""
    found: logging.Handler = logging.StreamHandler(stream)
    found.addFilter(IdsFilter())
    found.setFormatter(JsonFormatter() if log_format == "json" else logging.Formatter(TEXT_FORMAT))
    return found


def configure(log_format: LogFormat = "text") -> None:
    """The process's logging: INFO and up to stderr in `log_format` (aiokafka's from
    WARNING: it is chatty about every rebalance)."""
    root = logging.getLogger()
    if not root.handlers:
        root.addHandler(handler(log_format))
    root.setLevel(logging.INFO)
    logging.getLogger("aiokafka").setLevel(logging.WARNING)


__all__ = [
    "ID_FIELDS",
    "IdsFilter",
    "JsonFormatter",
    "LogFormat",
    "configure",
    "handler",
    "log_ids",
]
