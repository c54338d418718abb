"""Shared fixtures: a real broker, unique topic names, and event-store URLs on SQLite and
PostgreSQL (PostgreSQL tests skip when no server answers, unless PIPELINES_REQUIRE_POSTGRES=1,
which turns the skip into a failure)."""

from __future__ import annotations

import re
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from tests.infra import postgres
from tests.infra.kafka import BrokerKind, kafka_for_tests


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    # .ci/run reads this junit property to prove PostgreSQL tests ran rather than skipped.
    for item in items:
        if item.get_closest_marker("postgres") is not None:
            item.user_properties.append(("postgres", "1"))


@pytest.fixture(scope="session")
def _kafka() -> Iterator[tuple[str, BrokerKind]]:
    with kafka_for_tests() as found:
        yield found


@pytest.fixture(scope="session")
def kafka_bootstrap(_kafka: tuple[str, BrokerKind]) -> str:
    """Bootstrap servers of the session's broker (started once, stopped at the end)."""
    return _kafka[0]


@pytest.fixture(scope="session")
def broker_kind(_kafka: tuple[str, BrokerKind]) -> BrokerKind:
    """ "external" (KAFKA_BOOTSTRAP_SERVERS), "container" (testcontainers) or "embedded"."""
    return _kafka[1]


@pytest.fixture
def topic_name(request: pytest.FixtureRequest) -> Callable[[str], str]:
    """A factory of topic names unique to this test (the session shares one broker)."""
    test = re.sub(r"[^a-zA-Z0-9._-]+", "-", request.node.name)[:80].strip("-")

    def make(suffix: str = "t") -> str:
        return f"test.{test}.{suffix}.{uuid.uuid4().hex[:8]}"

    return make


@pytest.fixture
def sqlite_url(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'events.db'}"


@pytest.fixture(scope="session")
def postgres_database_url() -> Iterator[str]:
    """A database created for this test session and dropped after it."""
    reason = postgres.unreachable_reason()
    if reason is not None:
        if postgres.postgres_required():
            pytest.fail(f"{postgres.REQUIRE_ENV}=1 but {reason}", pytrace=False)
        pytest.skip(reason)
    url = postgres.create_database()
    yield url
    postgres.drop_database(url)


@pytest.fixture
def postgres_url(postgres_database_url: str) -> str:
    """The session database with a fresh schema selected (libpq `options=-csearch_path`)."""
    schema = postgres.create_schema(postgres_database_url)
    return postgres.with_search_path(postgres_database_url, schema)


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def store_url(request: pytest.FixtureRequest) -> str:
    """Runs the test once on SQLite and once on PostgreSQL."""
    fixture = "sqlite_url" if request.param == "sqlite" else "postgres_url"
    url: str = request.getfixturevalue(fixture)
    return url
