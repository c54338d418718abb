"""The configs read model: one row per Config aggregate with its latest validation report.

Mirrors `domain.config.Config`'s events. A stored config always passed validation, so its
report can only carry warnings; it is the report of the document's latest version. A
deleted config keeps its row, marked `deleted` (the queries leave it out).
"""

from __future__ import annotations

from typing import Final

from contracts.events import LifecycleEvent
from projections.rows import Data, Row, Step, apply_with
from projections.times import iso


def _created(event: LifecycleEvent) -> Row:
    data = event.data
    at = iso(data["at"])
    return {
        "id": event.aggregate_id,
        "name": data["name"],
        # events stored before configs had a description lack it
        "description": data.get("description"),
        "version": 1,
        "created_at": at,
        "updated_at": at,
        "document": data["document"],
        "validation_report": data["report"],
        "deleted": False,
    }


def _updated(row: Row, data: Data) -> Row:
    row["name"] = data["name"]
    row["description"] = data.get("description")
    row["version"] = data["config_version"]
    row["updated_at"] = iso(data["at"])
    row["document"] = data["document"]
    row["validation_report"] = data["report"]
    return row


def _deleted(row: Row, data: Data) -> Row:
    row["deleted"] = True
    row["updated_at"] = iso(data["at"])
    return row


STEPS: Final[dict[str, Step]] = {"Updated": _updated, "Deleted": _deleted}


def apply(event: LifecycleEvent, row: Row | None) -> Row:
    return apply_with(_created, STEPS, event, row)
