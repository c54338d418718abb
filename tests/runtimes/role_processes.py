"""Role processes for the SIGKILL tests: `pipelines serve --role <role>` started with a
test's settings in its environment, killed or stopped by the test, and every one still
alive stopped (SIGTERM, then SIGKILL) when the test ends."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

from services.settings import Settings

REPO = Path(__file__).resolve().parents[2]


class RoleProcesses:
    """Processes of one role, their output appended to `log`."""

    def __init__(self, role: str, log: Path) -> None:
        self.role = role
        self.log = log
        self.started: list[subprocess.Popen[bytes]] = []

    def spawn(self, settings: Settings) -> subprocess.Popen[bytes]:
        """`pipelines serve --role {role}` with `settings` (and no other PIPELINES_*
        variable) in its environment."""
        env = {k: v for k, v in os.environ.items() if not k.startswith("PIPELINES_")}
        for name, value in settings.model_dump(exclude_none=True).items():
            env[f"PIPELINES_{name.upper()}"] = str(value)
        with self.log.open("ab") as output:
            process = subprocess.Popen(
                [sys.executable, "-m", "services.entrypoints.cli", "serve", "--role", self.role],
                cwd=REPO,
                env=env,
                stdin=subprocess.DEVNULL,
                stdout=output,
                stderr=subprocess.STDOUT,
            )
        self.started.append(process)
        return process

    def output(self) -> str:
        return self.log.read_text() if self.log.exists() else ""

    def kill(self, process: subprocess.Popen[bytes]) -> None:
        """SIGKILL a process that must still be running."""
        assert process.poll() is None, self.output()
        process.send_signal(signal.SIGKILL)
        process.wait(10)

    def stop(self, process: subprocess.Popen[bytes]) -> int:
        """SIGTERM (SIGKILL if it takes over 30 s); answers its exit code."""
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
            try:
                process.wait(30)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(10)
        return process.returncode


@contextlib.contextmanager
def role_processes(role: str, log: Path) -> Iterator[RoleProcesses]:
    found = RoleProcesses(role, log)
    try:
        yield found
    finally:
        for process in found.started:
            found.stop(process)


__all__ = ["RoleProcesses", "role_processes"]
