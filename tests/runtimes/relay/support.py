"""What the relay tests share besides their fixtures (conftest.py)."""

from __future__ import annotations

from typing import Final

EVENT_PARTITIONS: Final = 3
