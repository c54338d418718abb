"""Where each route's consumed and produced messages are kept, per execution — the store
replay reads: the `MessageStore` interface (interface.py), a store in a folder (files.py)
and one in the event store's database (database.py), and `open_message_store`, which picks
one from the settings (factory.py)."""

from services.adapters.message_store.database import MESSAGES_TABLE, DatabaseMessageStore
from services.adapters.message_store.factory import open_message_store
from services.adapters.message_store.files import SEGMENT_SUFFIX, FileMessageStore
from services.adapters.message_store.interface import (
    Direction,
    MessageStore,
    StoredMessage,
    ToStore,
    UnsafeRouteId,
)

__all__ = [
    "MESSAGES_TABLE",
    "SEGMENT_SUFFIX",
    "DatabaseMessageStore",
    "Direction",
    "FileMessageStore",
    "MessageStore",
    "StoredMessage",
    "ToStore",
    "UnsafeRouteId",
    "open_message_store",
]
