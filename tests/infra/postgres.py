"""A throwaway PostgreSQL database per test session, and a fresh schema per test."""

from __future__ import annotations

import os
import uuid
from urllib.parse import quote, urlsplit, urlunsplit

import psycopg
from psycopg import sql

# Where the test server lives; CI runs one on 127.0.0.1:5432 as user postgres.
ADMIN_URL = os.environ.get(
    "PIPELINES_TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/postgres"
)
REQUIRE_ENV = "PIPELINES_REQUIRE_POSTGRES"


def postgres_required() -> bool:
    return os.environ.get(REQUIRE_ENV, "").strip().lower() in ("1", "true", "yes", "y")


def unreachable_reason(admin_url: str = ADMIN_URL) -> str | None:
    """None when the server answers, else why it did not."""
    try:
        with psycopg.connect(admin_url, connect_timeout=3, autocommit=True) as conn:
            conn.execute("SELECT 1")
    except psycopg.Error as e:
        return f"PostgreSQL at {_redacted(admin_url)} is unreachable: {e}".strip()
    return None


def with_database(url: str, dbname: str) -> str:
    parts = urlsplit(url)
    return urlunsplit(parts._replace(path="/" + quote(dbname), query=""))


def with_search_path(url: str, schema: str) -> str:
    """The libpq way to select a schema, understood by psycopg and services.adapters.eventstore."""
    return f"{url}?options=-csearch_path%3D{quote(schema)}"


def create_database(admin_url: str = ADMIN_URL) -> str:
    dbname = f"pipelines_test_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(admin_url, autocommit=True) as conn:
        conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(dbname)))
    return with_database(admin_url, dbname)


def drop_database(database_url: str, admin_url: str = ADMIN_URL) -> None:
    dbname = urlsplit(database_url).path.lstrip("/")
    with psycopg.connect(admin_url, autocommit=True) as conn:
        conn.execute(
            sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(dbname))
        )


def create_schema(database_url: str) -> str:
    schema = f"t_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(database_url, autocommit=True) as conn:
        conn.execute(sql.SQL("CREATE SCHEMA {}").format(sql.Identifier(schema)))
    return schema


def _redacted(url: str) -> str:
    parts = urlsplit(url)
    if parts.password is None:
        return url
    netloc = parts.netloc.replace(f":{parts.password}@", ":***@")
    return urlunsplit(parts._replace(netloc=netloc))
