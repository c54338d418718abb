"""`pipelines api-keys create|list|revoke`: written to the event store's database
directly, which is how the first key is made (the HTTP API needs a key already)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated

import typer

from services.entrypoints.cli.environment import EXIT_REJECTED, fail, settings

if TYPE_CHECKING:
    from services.adapters.api_keys import ApiKeyStore


def _key_store(url: str | None = None) -> ApiKeyStore:
    from services.adapters.api_keys import ApiKeyStore

    return ApiKeyStore(url if url is not None else settings().event_store_url)


def create(
    name: Annotated[str, typer.Argument(help="Unique name: letters, digits, _ and -.")],
    read_only: Annotated[
        bool, typer.Option("--read-only", help="Only GET requests (default: read and write).")
    ] = False,
) -> None:
    """Create a key and print it as the last line (it is shown only this once)."""
    from domain.errors import DomainError
    from services.adapters.api_keys import Scope

    scope = Scope.READ if read_only else Scope.WRITE
    with _key_store() as store:
        try:
            created = store.create(name, scope)
        except DomainError as error:
            raise fail(error.message, EXIT_REJECTED) from None
    typer.echo(
        f"Created API key '{name}' ({scope}); send it as 'Authorization: Bearer <key>'. "
        "It is not stored and cannot be shown again:"
    )
    typer.echo(created.secret)


def list_keys() -> None:
    """The live keys (never the keys themselves: their first characters)."""
    from rich.console import Console
    from rich.table import Table

    with _key_store() as store:
        keys = store.list_keys()
    table = Table()
    for column in ("name", "scope", "prefix", "created_at", "id"):
        table.add_column(column, overflow="fold")  # a narrow terminal wraps, never cuts
    for key in keys:
        table.add_row(key.name, str(key.scope), f"{key.prefix}...", key.created_at, key.id)
    Console().print(table)


def revoke(name: Annotated[str, typer.Argument(help="The key's name.")]) -> None:
    """Revoke a key. API processes that checked it recently may accept it for up to
    PIPELINES_API_KEY_CACHE_TTL_S more seconds."""
    from domain.errors import DomainError

    found = settings()
    with _key_store(found.event_store_url) as store:
        try:
            store.revoke(name)
        except DomainError as error:
            raise fail(error.message, EXIT_REJECTED) from None
    typer.echo(
        f"Revoked API key '{name}' (running API processes stop accepting it within "
        f"{found.api_key_cache_ttl_s:g} s)."
    )
