"""The message store a process uses, chosen by its settings (`PIPELINES_MESSAGE_STORE`)."""

from __future__ import annotations

from services.adapters.message_store.database import DatabaseMessageStore
from services.adapters.message_store.files import FileMessageStore
from services.adapters.message_store.interface import MessageStore
from services.settings import Settings


def open_message_store(settings: Settings) -> MessageStore:
    """`database`: in the event store's database (`event_store_url`); `files`: under
    `execution_storage_dir`. Synchronous (the database store connects and creates its
    table): call it off the event loop; close what it returns."""
    if settings.message_store == "files":
        return FileMessageStore(settings.execution_storage_dir)
    return DatabaseMessageStore(settings.event_store_url)


__all__ = ["open_message_store"]
