"""compose.yaml cannot be started here (no Docker engine), so it is checked by reading it:
every pipelines service runs a real role, its health check asks about that role, and
every PIPELINES_* setting it passes is one Settings accepts (Settings forbids others)."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest
import yaml

from services.entrypoints.roles import ROLES
from services.settings import Settings

COMPOSE = Path(__file__).resolve().parents[1] / "compose.yaml"


def load() -> dict[str, Any]:
    document: dict[str, Any] = yaml.safe_load(COMPOSE.read_text())
    return document


def pipelines_services() -> dict[str, dict[str, Any]]:
    return {
        name: service
        for name, service in load()["services"].items()
        if (service.get("command") or [None])[0] == "pipelines"
    }


def roles_of(command: list[str]) -> list[str]:
    return [command[i + 1] for i, arg in enumerate(command) if arg == "--role"]


def test_every_role_has_a_service_and_every_service_runs_a_real_role() -> None:
    services = pipelines_services()
    assert services, "compose.yaml runs no pipelines service"
    served: list[str] = []
    for name, service in services.items():
        command = service["command"]
        assert command[:2] == ["pipelines", "serve"], name
        roles = roles_of(command)
        assert roles and all(role in ROLES for role in roles), (name, roles)
        served.extend(roles)
        health = service["healthcheck"]["test"]
        assert health[:3] == ["CMD", "pipelines", "health"], name
        assert roles_of(health[1:]) == roles[:1], name
    assert sorted(served) == sorted(ROLES)


@pytest.mark.parametrize("name", sorted(pipelines_services()))
def test_every_setting_a_service_passes_is_accepted(
    name: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    environment = pipelines_services()[name]["environment"]
    assert isinstance(environment, dict)
    for key in [k for k in os.environ if k.startswith("PIPELINES_")]:
        monkeypatch.delenv(key)
    ours = {k: str(v) for k, v in environment.items() if k.startswith("PIPELINES_")}
    assert ours.keys() == environment.keys(), "only PIPELINES_* settings reach the service"
    fields = {f"PIPELINES_{field}".upper() for field in Settings.model_fields}
    assert ours.keys() <= fields, sorted(ours.keys() - fields)
    for key, value in ours.items():
        monkeypatch.setenv(key, value)
    settings = Settings()
    assert settings.kafka_bootstrap_servers == "kafka:9092"
    assert settings.event_store_url.startswith("postgresql://")


def test_the_services_wait_for_kafka_and_postgres_to_be_healthy() -> None:
    document = load()
    for name in ("kafka", "postgres"):
        assert "healthcheck" in document["services"][name]
    assert document["services"]["kafka"]["image"].startswith("apache/kafka")
    for name, service in pipelines_services().items():
        depends = service["depends_on"]
        assert depends["kafka"]["condition"] == "service_healthy", name
        assert depends["postgres"]["condition"] == "service_healthy", name


def test_the_reconciler_runs_one_replica() -> None:
    # Its consumers are assigned, not balanced: two replicas would run every pipeline twice.
    assert pipelines_services()["reconciler"]["deploy"]["replicas"] == 1
