"""`pipelines api-keys create|list|revoke`: written straight to the event store's
database (SQLite and PostgreSQL), so the first key needs no API; the key printed last
works against the API, and a revoke stops it."""

from __future__ import annotations

import pytest
from typer.testing import CliRunner, Result

from services.adapters.api_keys import ApiKeyStore, Scope, key_hash
from services.entrypoints.cli import app
from tests.entrypoints.http.support import api_only, bearer


@pytest.fixture
def cli(store_url: str, monkeypatch: pytest.MonkeyPatch) -> CliRunner:
    monkeypatch.setenv("PIPELINES_EVENT_STORE_URL", store_url)
    return CliRunner()


def run(cli: CliRunner, *args: str) -> Result:
    return cli.invoke(app, ["api-keys", *args])


def created_key(outcome: Result) -> str:
    assert outcome.exit_code == 0, outcome.output
    lines = outcome.stdout.strip().splitlines()
    assert len(lines) >= 2, "an explanation first, then the key"
    return lines[-1]


async def test_the_key_printed_last_works_against_the_api_until_revoked(
    cli: CliRunner, store_url: str, kafka_bootstrap: str
) -> None:
    key = created_key(run(cli, "create", "me"))
    assert key.startswith("pls_") and " " not in key

    async with api_only(kafka_bootstrap, store_url) as (_, client):
        allowed = await client.post(
            "/v0/api-keys", json={"name": "made-by-me"}, headers=bearer(key)
        )
        assert allowed.status_code == 201, allowed.text

        revoked = run(cli, "revoke", "me")
        assert revoked.exit_code == 0, revoked.output
        assert "Revoked API key 'me'" in revoked.stdout

        refused = await client.get("/v0/pipelines", headers=bearer(key))
        assert refused.status_code == 401


def test_read_only_makes_a_read_key(cli: CliRunner, store_url: str) -> None:
    key = created_key(run(cli, "create", "viewer", "--read-only"))
    with ApiKeyStore(store_url) as store:
        found = store.find(key_hash(key))
    assert found is not None
    assert (found.name, found.scope) == ("viewer", Scope.READ)


def test_create_writes_a_write_key_and_stores_only_its_hash(cli: CliRunner, store_url: str) -> None:
    key = created_key(run(cli, "create", "ops"))
    with ApiKeyStore(store_url) as store:
        rows = store.db.query("SELECT * FROM api_keys WHERE name = ?", ("ops",))
        found = store.find(key_hash(key))
    assert found is not None and found.scope is Scope.WRITE
    assert len(rows) == 1
    assert not any(isinstance(value, str) and key in value for value in rows[0])


def test_list_shows_names_and_prefixes_never_keys(cli: CliRunner) -> None:
    first = created_key(run(cli, "create", "alpha"))
    second = created_key(run(cli, "create", "beta", "--read-only"))

    listed = run(cli, "list")

    assert listed.exit_code == 0, listed.output
    assert "alpha" in listed.stdout and "beta" in listed.stdout
    assert first not in listed.stdout and second not in listed.stdout
    assert first[:10] in listed.stdout and second[:10] in listed.stdout


def test_refusals_exit_1_with_the_reason(cli: CliRunner) -> None:
    created_key(run(cli, "create", "taken"))

    duplicate = run(cli, "create", "taken")
    bad_name = run(cli, "create", "no spaces")
    unknown = run(cli, "revoke", "nobody")

    assert duplicate.exit_code == 1
    assert "An API key named 'taken' already exists" in duplicate.stderr
    assert bad_name.exit_code == 1 and "contains characters" in bad_name.stderr
    assert unknown.exit_code == 1 and "Unknown API key 'nobody'" in unknown.stderr
    assert duplicate.stdout == bad_name.stdout == unknown.stdout == ""


def test_a_revoked_name_can_be_given_again(cli: CliRunner, store_url: str) -> None:
    old = created_key(run(cli, "create", "rotated"))
    assert run(cli, "revoke", "rotated").exit_code == 0
    new = created_key(run(cli, "create", "rotated"))

    with ApiKeyStore(store_url) as store:
        assert store.find(key_hash(old)) is None
        renewed = store.find(key_hash(new))
    assert renewed is not None and renewed.name == "rotated"
