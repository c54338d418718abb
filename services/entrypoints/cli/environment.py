"""What every sub-command shares: exit codes, failing with a message, the settings from
the environment (and the broker address `pipelines dev` leaves for a second terminal),
logging.

Light on purpose: `pipelines --help` imports this, so pydantic-settings and everything
that talks to Kafka or a database is imported inside the functions that need it.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import typer

from services.observability import logs
from services.observability.logs import LogFormat

if TYPE_CHECKING:
    from services.settings import Settings

DATA_DIR = Path(".data")
BOOTSTRAP_FILE = DATA_DIR / "bootstrap"

EXIT_REJECTED = 1
EXIT_USAGE = 2
EXIT_TIMEOUT = 3


def fail(message: str, code: int = EXIT_USAGE) -> typer.Exit:
    """Print `message` to stderr; the caller raises what this returns."""
    typer.echo(f"error: {message}", err=True)
    return typer.Exit(code)


def unreachable(error: Exception) -> typer.Exit:
    """The broker could not be reached, or the service's topics do not exist yet."""
    return fail(f"{error}; is the service running?")


def settings() -> Settings:
    from pydantic import ValidationError

    from services.settings import Settings

    try:
        return Settings()
    except ValidationError as error:
        raise fail(f"invalid PIPELINES_* settings:\n{error}") from None


def client_settings() -> Settings:
    """Settings with a bootstrap address: the environment's, or the one `dev` wrote."""
    found = settings()
    if found.kafka_bootstrap_servers:
        return found
    if BOOTSTRAP_FILE.exists():
        bootstrap = BOOTSTRAP_FILE.read_text().strip()
        return found.model_copy(update={"kafka_bootstrap_servers": bootstrap})
    raise fail(
        "no Kafka address: set PIPELINES_KAFKA_BOOTSTRAP_SERVERS or run `pipelines dev` "
        f"in this folder (it writes {BOOTSTRAP_FILE})"
    )


def configure_logging(log_format: LogFormat = "text") -> None:
    """INFO and up to stderr: `text` for people, `json` one object a line with the
    correlation ids in effect (`PIPELINES_LOG_FORMAT`; services.observability.logs)."""
    logs.configure(log_format)
