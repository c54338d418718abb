"""API keys: created and revoked by the CLI and `/v0/api-keys`, checked on every request.

They live in the table `api_keys` of the event store's database (SQLite or PostgreSQL,
opened like the read models through `projections.db.Database`), one row per key: id,
name, the SHA-256 of the whole key, the first characters (to tell keys apart in a
list), scope (`read` or `write`), created_at and revoked_at (NULL while live). The key
itself is returned once, by `create`, and never stored.

Why SHA-256 and not bcrypt/argon2: those are slow on purpose so that a stolen table
cannot be used to guess low-entropy passwords. Our keys are 32 random bytes; nobody can
enumerate 2**256 candidates however fast the hash is, so a slow hash would only make
every request slower. A fast hash also lets us look a key up by its hash (an index),
instead of comparing a salted hash against every row.

Names follow Feldera's rule (letters, digits, `_` and `-`, at most 100 characters) and
its error codes. A name is unique among live keys: a revoked key keeps its row (it is
history) and its name may be given to a new key, as after Feldera's delete.
"""

from __future__ import annotations

import hashlib
import re
import secrets
import sqlite3
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any, Final

import psycopg

from domain.errors import DomainError
from projections.db import TableStore
from projections.times import iso

KEY_PREFIX: Final = "pls_"  # recognisable in logs and by secret scanners
KEY_BYTES: Final = 32
SHOWN_PREFIX_CHARS: Final = len(KEY_PREFIX) + 6  # what lists show of a key
NAME_MAX: Final = 100
_NAME_PATTERN: Final = re.compile(r"[A-Za-z0-9_-]+")

_COLUMNS: Final = "id, name, scope, prefix, created_at, revoked_at"
_SCHEMA: Final = (
    "CREATE TABLE IF NOT EXISTS api_keys ("
    "id TEXT PRIMARY KEY, "
    "name TEXT NOT NULL, "
    "key_hash TEXT NOT NULL UNIQUE, "
    "prefix TEXT NOT NULL, "
    "scope TEXT NOT NULL CHECK (scope IN ('read', 'write')), "
    "created_at TEXT NOT NULL, "
    "revoked_at TEXT)",
    "CREATE UNIQUE INDEX IF NOT EXISTS ux_api_keys_live_name "
    "ON api_keys (name) WHERE revoked_at IS NULL",
)


class Scope(StrEnum):
    """What a key may do: `read` the GET endpoints; `write` everything."""

    READ = "read"
    WRITE = "write"

    def allows(self, needed: Scope) -> bool:
        return self is Scope.WRITE or needed is Scope.READ


@dataclass(frozen=True)
class ApiKey:
    """A key's row, without its hash: what lists and checks need."""

    id: str
    name: str
    scope: Scope
    prefix: str
    created_at: str
    revoked_at: str | None = None

    def describe(self) -> dict[str, Any]:
        """The public description (lists, `GET /v0/api-keys/{name}`)."""
        return {
            "id": self.id,
            "name": self.name,
            "scope": str(self.scope),
            "prefix": self.prefix,
            "created_at": self.created_at,
        }


@dataclass(frozen=True)
class NewApiKey:
    key: ApiKey
    secret: str  # the key itself: shown once, never stored


# --- the key and its hash ------------------------------------------------------------------


def generate_secret() -> str:
    return KEY_PREFIX + secrets.token_urlsafe(KEY_BYTES)


def key_hash(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def looks_like_key(secret: str) -> bool:
    """Cheap shape check, so that garbage never costs a database round trip."""
    return secret.startswith(KEY_PREFIX) and len(secret) > len(KEY_PREFIX)


# --- errors (Feldera's codes, `{message, error_code, details}`) -----------------------------


def check_name(name: str) -> None:
    if not name:
        raise DomainError("EmptyName", "Name cannot be empty", None, 400)
    if len(name) > NAME_MAX:
        raise DomainError(
            "TooLongName",
            f"Name '{name}' is longer ({len(name)}) than maximum allowed ({NAME_MAX})",
            {"name": name, "length": len(name), "maximum": NAME_MAX},
            400,
        )
    if not _NAME_PATTERN.fullmatch(name):
        raise DomainError(
            "NameDoesNotMatchPattern",
            f"Name '{name}' contains characters which are not lowercase (a-z), uppercase "
            "(A-Z), numbers (0-9), underscores (_) or hyphens (-)",
            {"name": name},
            400,
        )


def duplicate_name(name: str) -> DomainError:
    return DomainError(
        "DuplicateName", f"An API key named '{name}' already exists", {"name": name}, 409
    )


def unknown_api_key(name: str) -> DomainError:
    return DomainError("UnknownApiKey", f"Unknown API key '{name}'", {"name": name}, 404)


# --- the store -------------------------------------------------------------------------------


def _key(row: tuple[Any, ...]) -> ApiKey:
    id_, name, scope, prefix, created_at, revoked_at = row
    return ApiKey(str(id_), name, Scope(scope), prefix, created_at, revoked_at)


def _now() -> str:
    stamp = iso(datetime.now(UTC))
    assert stamp is not None
    return stamp


class ApiKeyStore(TableStore):
    """The `api_keys` table (created if missing). Synchronous: call it off the event loop."""

    TABLES = _SCHEMA

    def create(self, name: str, scope: Scope) -> NewApiKey:
        """A new live key; DuplicateName (409) if a live key has the name."""
        check_name(name)
        secret = generate_secret()
        key = ApiKey(str(uuid.uuid4()), name, scope, secret[:SHOWN_PREFIX_CHARS], _now())
        try:
            with self.db.transaction() as cursor:
                if cursor.execute(
                    "SELECT 1 FROM api_keys WHERE name = ? AND revoked_at IS NULL", (name,)
                ):
                    raise duplicate_name(name)
                cursor.execute(
                    "INSERT INTO api_keys (id, name, key_hash, prefix, scope, created_at) "
                    "VALUES (?, ?, ?, ?, ?, ?)",
                    (key.id, name, key_hash(secret), key.prefix, str(scope), key.created_at),
                )
        except (sqlite3.IntegrityError, psycopg.IntegrityError):
            # Two creators raced past the check (PostgreSQL); the live-name index decided.
            raise duplicate_name(name) from None
        return NewApiKey(key, secret)

    def list_keys(self) -> list[ApiKey]:
        """Every live key, by name."""
        rows = self.db.query(
            f"SELECT {_COLUMNS} FROM api_keys WHERE revoked_at IS NULL ORDER BY name"
        )
        return [_key(row) for row in rows]

    def get(self, name: str) -> ApiKey:
        """The live key with that name; UnknownApiKey (404) if none."""
        rows = self.db.query(
            f"SELECT {_COLUMNS} FROM api_keys WHERE name = ? AND revoked_at IS NULL", (name,)
        )
        if not rows:
            raise unknown_api_key(name)
        return _key(rows[0])

    def revoke(self, name: str) -> ApiKey:
        """Revoke the live key with that name (it stops working at once for a fresh
        lookup; see services.entrypoints.http.auth for the cache); UnknownApiKey (404) if none."""
        revoked_at = _now()
        with self.db.transaction() as cursor:
            rows = cursor.execute(
                f"SELECT {_COLUMNS} FROM api_keys WHERE name = ? AND revoked_at IS NULL",
                (name,),
            )
            if not rows:
                raise unknown_api_key(name)
            key = _key(rows[0])
            cursor.execute("UPDATE api_keys SET revoked_at = ? WHERE id = ?", (revoked_at, key.id))
        return ApiKey(key.id, key.name, key.scope, key.prefix, key.created_at, revoked_at)

    def find(self, digest: str) -> ApiKey | None:
        """The live key whose hash is `digest`, or None (unknown or revoked)."""
        rows = self.db.query(
            f"SELECT {_COLUMNS} FROM api_keys WHERE key_hash = ? AND revoked_at IS NULL",
            (digest,),
        )
        return _key(rows[0]) if rows else None


__all__ = [
    "KEY_PREFIX",
    "ApiKey",
    "ApiKeyStore",
    "NewApiKey",
    "Scope",
    "check_name",
    "duplicate_name",
    "generate_secret",
    "key_hash",
    "looks_like_key",
    "unknown_api_key",
]
