"""The Config aggregate: create, update and reject; replay and snapshots round-trip."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any
from uuid import UUID, uuid4

import orjson
import pytest
import yaml

from domain.adapters import BUILTIN_ADAPTERS, AdapterRegistry, AdapterSpec
from domain.config import Config
from domain.errors import DomainError
from domain.validation import validate_config
from tests.domain.config_documents import FETCH_INIT, MAP_STEP, one_route_document

T0 = datetime(2026, 1, 1, 12, 0, tzinfo=UTC)


def document(*, dead_letter: bool = True, init_route: str = "fetch") -> dict[str, Any]:
    init = {**FETCH_INIT, "route": init_route}
    return one_route_document([MAP_STEP], dead_letter=dead_letter, init_message=init)


def created(**kwargs: Any) -> Config:
    config = Config.create("crawler", document(**kwargs), T0, config_id=uuid4())
    config.collect_events()
    return config


def test_create_stores_the_normalized_document_and_the_report() -> None:
    config_id = uuid4()
    config = Config.create("crawler", document(dead_letter=False), T0, config_id=config_id)
    assert config.id == config_id
    assert config.name == "crawler"
    assert config.config_version == 1
    assert config.created_at == config.updated_at == T0
    # defaults filled in
    assert config.document["routes"]["fetch"]["inbound"] == {
        "topic": "fetch.in",
        "concurrency": 1,
        "prefetch": 10,
    }
    # warnings are kept with a valid config
    assert config.report.is_valid
    assert [i.code for i in config.report.issues] == ["W502"]
    assert config.init_route == "fetch"
    assert [type(e).__name__ for e in config.collect_events()] == ["Created"]


def test_create_without_an_id_gives_a_uuid7() -> None:
    config = Config.create("crawler", document(), T0)
    assert isinstance(config.id, UUID) and config.id.version == 7


def test_create_accepts_yaml_text() -> None:
    from_yaml = Config.create("c", yaml.safe_dump(document()), T0)
    from_dict = Config.create("c", document(), T0)
    assert from_yaml.document == from_dict.document
    assert from_yaml.report == from_dict.report


def test_create_rejects_an_invalid_document_with_the_report() -> None:
    bad = document(init_route="nowhere")
    with pytest.raises(DomainError) as caught:
        Config.create("crawler", bad, T0, config_id=uuid4())
    error = caught.value
    assert error.error_code == "ConfigValidationFailed"
    assert error.message == "Config validation failed"
    assert error.http_status == 400
    expected, _ = validate_config(bad, BUILTIN_ADAPTERS)
    assert error.details == expected.model_dump(mode="json")
    assert error.details["is_valid"] is False
    assert error.body().model_dump()["error_code"] == "ConfigValidationFailed"


def test_create_rejects_an_empty_name() -> None:
    with pytest.raises(DomainError) as caught:
        Config.create("  ", document(), T0)
    assert caught.value.error_code == "InvalidConfigName"


def test_update_replaces_the_document_and_bumps_config_version() -> None:
    config = created()
    later = T0 + timedelta(minutes=5)
    changed = document()
    changed["init_message"]["payload"] = {"url": "https://b"}
    config.update(changed, later, name="crawler-2")
    assert config.config_version == 2
    assert config.name == "crawler-2"
    assert config.init_payload == {"url": "https://b"}
    assert config.updated_at == later and config.created_at == T0
    events = config.collect_events()
    assert [type(e).__name__ for e in events] == ["Updated"]
    config.update(document(), later)
    assert config.config_version == 3 and config.name == "crawler-2"


def test_a_rejected_update_leaves_no_pending_event_and_no_change() -> None:
    config = created()
    before = (config.document, config.report, config.config_version, config.version)
    with pytest.raises(DomainError) as caught:
        config.update(document(init_route="nowhere"), T0, name="renamed")
    assert caught.value.details["issues"][0]["code"] == "E202"
    assert config.pending_events == []
    assert (config.document, config.report, config.config_version, config.version) == before
    assert config.name == "crawler"


def test_an_unparseable_update_is_rejected_without_events() -> None:
    config = created()
    with pytest.raises(DomainError):
        config.update("{not json", T0)
    assert config.pending_events == []


def test_validate_is_a_query_against_a_given_registry() -> None:
    config = created()
    assert config.validate().is_valid
    report = config.validate(AdapterRegistry())
    assert [i.code for i in report.issues] == ["E103"]
    assert config.pending_events == []


def test_init_payload_is_a_copy() -> None:
    config = created()
    payload = config.init_payload
    payload["opts"]["n"] = 99
    assert config.init_payload == {"url": "https://a", "opts": {"n": 1}}


def test_a_custom_registry_admits_a_plugin_adapter() -> None:
    doc = document()
    doc["routes"]["fetch"]["adapters"] = [{"type": "scrape", "config": {}}]
    with pytest.raises(DomainError):
        Config.create("c", doc, T0)
    registry = BUILTIN_ADAPTERS.with_specs(AdapterSpec("scrape"))
    assert Config.create("c", doc, T0, registry=registry).report.is_valid


def test_events_round_trip_through_json_and_replay() -> None:
    config = Config.create("crawler", document(dead_letter=False), T0, config_id=uuid4())
    config.update(document(), T0 + timedelta(seconds=1), name="crawler-2")
    events = config.collect_events()
    replayed: Any = None
    for ev in events:
        # what the event store's mapper does: pydantic to JSON bytes and back
        assert isinstance(ev, Config.Event)
        again = type(ev).model_validate_json(orjson.dumps(ev.model_dump(mode="json")))
        replayed = again.mutate(replayed)
    assert replayed.id == config.id and replayed.version == config.version == 2
    assert replayed.name == "crawler-2" and replayed.config_version == 2
    assert replayed.document == config.document
    assert replayed.report == config.report
    assert replayed.updated_at == config.updated_at


def test_snapshot_round_trips() -> None:
    config = created()
    config.update(document(dead_letter=False), T0 + timedelta(hours=1))
    snapshot = Config.Snapshot.take(config)
    restored = Config.Snapshot.model_validate_json(snapshot.model_dump_json()).mutate(None)
    assert isinstance(restored, Config)
    assert (restored.id, restored.version, restored.config_version) == (config.id, 2, 2)
    assert restored.document == config.document
    assert restored.report == config.report
    assert restored.created_at == T0 and restored.updated_at == config.updated_at
