"""A command consumer in its own process, for the SIGKILL test.

Settings come from the environment (PIPELINES_*). With TEST_KILL_AFTER_BATCHES=n the
process SIGKILLs itself right after its n-th batch was stored and before any of that
batch's results were published or its offsets committed: the worst moment to die.
SIGTERM stops it gracefully.
"""

from __future__ import annotations

import asyncio
import os
import signal
from collections.abc import Sequence

from services.adapters.stores import open_command_store
from services.runtimes.command_handler import CommandConsumer
from services.service_layer.decider import Decider, Item, Outcome
from services.service_layer.handlers import HANDLERS
from services.settings import Settings

KILL_AFTER_ENV = "TEST_KILL_AFTER_BATCHES"


class KillingDecider(Decider):
    kill_after = 0
    batches = 0

    def decide(self, items: Sequence[Item]) -> list[Outcome]:
        outcomes = super().decide(items)
        self.batches += 1
        if self.kill_after and self.batches >= self.kill_after:
            os.kill(os.getpid(), signal.SIGKILL)
        return outcomes


async def main() -> None:
    settings = Settings()
    with open_command_store(settings.event_store_url) as store:
        decider = KillingDecider(store, HANDLERS)
        decider.kill_after = int(os.environ.get(KILL_AFTER_ENV, "0"))
        # A short session lets the restarted member take over the dead one's partitions sooner.
        consumer = CommandConsumer(
            settings,
            decider,
            consumer_options={"session_timeout_ms": 6000, "heartbeat_interval_ms": 1000},
        )
        asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, consumer.request_stop)
        await consumer.run()


if __name__ == "__main__":
    asyncio.run(main())
