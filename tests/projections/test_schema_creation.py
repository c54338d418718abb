"""A role whose first open on a fresh PostgreSQL schema is a read-side store (read models,
message store) creates the schema itself instead of failing with InvalidSchemaName."""

from __future__ import annotations

import uuid

import psycopg
import pytest

from projections.store import ReadStore
from tests.infra import postgres


@pytest.mark.postgres
def test_a_read_store_opened_first_creates_the_search_paths_schema(
    postgres_database_url: str,
) -> None:
    schema = f"fresh_{uuid.uuid4().hex[:10]}"
    store = ReadStore(postgres.with_search_path(postgres_database_url, schema))
    try:
        assert store.applied_version(str(uuid.uuid4())) == 0
    finally:
        store.close()
    with psycopg.connect(postgres_database_url) as conn:
        found = conn.execute("SELECT 1 FROM pg_namespace WHERE nspname = %s", (schema,)).fetchall()
        conn.execute(f'DROP SCHEMA "{schema}" CASCADE')
    assert found == [(1,)]
