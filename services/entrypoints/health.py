"""Liveness for container health checks: a serving role touches its heartbeat file as
its loop goes round; `pipelines health --role X` (in the same container) checks that the
file is fresh. A wedged loop stops touching it, so the check fails and the orchestrator
restarts the container."""

from __future__ import annotations

import os
import tempfile
import time
from pathlib import Path

DEFAULT_MAX_AGE_S = 30.0
# Touching a file on every pass of a 50 ms loop would be wasted syscalls.
_MIN_TOUCH_INTERVAL_S = 1.0


def default_heartbeat_dir() -> Path:
    return Path(tempfile.gettempdir()) / "pipelines-health"


def heartbeat_path(role: str, directory: Path | None = None) -> Path:
    return (directory or default_heartbeat_dir()) / f"{role}.heartbeat"


class Heartbeat:
    """Callable: `beat()` marks the role alive (at most once a second hits the disk)."""

    def __init__(self, role: str, directory: Path | None = None) -> None:
        self.path = heartbeat_path(role, directory)
        self._last = float("-inf")

    def __call__(self) -> None:
        now = time.monotonic()
        if now - self._last < _MIN_TOUCH_INTERVAL_S:
            return
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.path.touch()
        os.utime(self.path)
        self._last = now

    def clear(self) -> None:
        """A stopped role is not alive: remove its file."""
        self.path.unlink(missing_ok=True)


def check(
    role: str, directory: Path | None = None, max_age_s: float = DEFAULT_MAX_AGE_S
) -> tuple[bool, str]:
    """(healthy, reason) for `role`'s heartbeat file."""
    path = heartbeat_path(role, directory)
    try:
        age = time.time() - path.stat().st_mtime
    except FileNotFoundError:
        return False, f"{role}: no heartbeat at {path} (not started, or stopped)"
    if age > max_age_s:
        return False, f"{role}: last heartbeat {age:.1f} s ago (limit {max_age_s:.0f} s)"
    return True, f"{role}: alive (heartbeat {age:.1f} s ago)"
