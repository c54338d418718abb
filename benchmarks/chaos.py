"""Chaos harness: the roles as separate processes under load, killed and fed bad input.

On the embedded broker and SQLite or PostgreSQL it runs handler, relay, projector,
orchestrator and reconciler (`pipelines serve --role X` each), pushes a mixed workload
(pipelines created, started and stopped through the reconciler; configs run through
their routes, examples/orders.yaml; seed-003 runs created, started and completed) and
injects faults: SIGKILL of a role every few seconds (restarted at once), every command
sent three times, malformed records of 11 kinds on the commands topic. Then it checks
and prints: every command answered, no duplicate effect, every malformed record in the
DLQ, read models equal to a rebuild, every execution final. Exit code 1 on a failure.

    uv run --frozen python -m benchmarks.chaos --store sqlite --seconds 60 --faults all
"""

from __future__ import annotations

import argparse
import asyncio
import random
import signal
import tempfile
import time
import uuid
from collections import Counter, defaultdict
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition

from benchmarks.bench import PG_DEFAULT, store_url
from benchmarks.chaos_support import (
    MARK,
    REPO,
    ROLES,
    Role,
    compare_with_rebuild,
    examine_store,
    malformed_record,
    unfinished_executions,
)
from contracts import (
    Command,
    CompleteRun,
    CreateConfig,
    CreatePipeline,
    CreateRun,
    RunConfig,
    StartPipeline,
    StartRun,
    StopPipeline,
)
from contracts.cloudevents import KafkaRecord, decode_result, encode_command
from contracts.errors import WireError
from contracts.results import CommandRejected
from services.adapters.kafka.embedded_broker import EmbeddedBroker, create_topics, embedded_tuning
from services.settings import Settings

RESULT_WAIT_S = 20.0  # per command during the load; the end waits again
SETTLE_S = 90.0
START_WAIT_S = 120.0  # the end: answers, final executions, read models level
KILL_EVERY_S = 3.0


class Ledger:
    """What was published and what came back, by command id."""

    def __init__(self) -> None:
        self.published: dict[str, str] = {}  # command id -> command type
        self.results: dict[str, list[str]] = defaultdict(list)  # id -> outcomes seen
        self.waiting: dict[str, asyncio.Event] = {}
        self.malformed: dict[str, str] = {}  # mark -> kind
        self.sends = 0

    def answered(self, command_id: str, outcome: str) -> None:
        self.results[command_id].append(outcome)
        if (event := self.waiting.get(command_id)) is not None:
            event.set()


class Harness:
    def __init__(self, args: argparse.Namespace, settings: Settings, logs: Path) -> None:
        self.args = args
        self.settings = settings
        self.random = random.Random(args.seed)
        self.ledger = Ledger()
        self.roles = {name: Role(name, settings, logs / f"{name}.log") for name in ROLES}
        self.producer = AIOKafkaProducer(
            bootstrap_servers=settings.kafka_bootstrap_servers, max_request_size=4 * 1024 * 1024
        )
        self.topics = settings.topics
        self.stop_load = asyncio.Event()

    # --- publishing and waiting ----------------------------------------------------------

    async def send(self, command: Command, wait_s: float = RESULT_WAIT_S) -> str | None:
        """Publish (three times with the dup fault); answers the outcome, None on no answer."""
        record = encode_command(command)
        command_id = dict(record.headers)["ce_id"].decode()
        self.ledger.published[command_id] = command.command_type()
        event = self.ledger.waiting.setdefault(command_id, asyncio.Event())
        copies = 3 if "dup" in self.args.faults else 1
        for _ in range(copies):
            await self._publish(record)
        try:
            await asyncio.wait_for(event.wait(), wait_s)
        except TimeoutError:
            return None
        return self.ledger.results[command_id][0]

    async def _publish(self, record: KafkaRecord) -> None:
        await self.producer.send_and_wait(
            self.topics.commands, record.value, key=record.key, headers=record.headers
        )
        self.ledger.sends += 1

    async def read_results(self) -> None:
        consumer = AIOKafkaConsumer(
            self.topics.command_results,
            bootstrap_servers=self.settings.kafka_bootstrap_servers,
            auto_offset_reset="earliest",
            fetch_max_wait_ms=20,
        )
        await consumer.start()
        try:
            while True:
                batch = await consumer.getmany(timeout_ms=200)
                for records in batch.values():
                    for r in records:
                        try:
                            result = decode_result(r.value, list(r.headers or ())).result
                        except WireError:
                            continue
                        outcome = result.outcome
                        if isinstance(result, CommandRejected):
                            outcome = f"rejected {result.error_code}"
                        self.ledger.answered(result.command_id, outcome)
        finally:
            await consumer.stop()

    # --- the workload --------------------------------------------------------------------

    async def pipelines(self, worker: int) -> None:
        n = 0
        while not self.stop_load.is_set():
            name = f"chaos-p{worker}-{n}"
            n += 1
            if await self.send(CreatePipeline(name=name)) != "accepted":
                continue
            await self.send(StartPipeline(pipeline_name=name))
            await asyncio.sleep(self.random.uniform(0.5, 2.0))
            await self.send(StopPipeline(pipeline_name=name))

    async def config_runs(self, config_id: uuid.UUID) -> None:
        n = 0
        while not self.stop_load.is_set():
            n += 1
            amount = self.random.choice([-5, 0, 10, 42])
            overrides = {"order_id": f"C-{n}", "customer": "chaos", "amount": amount}
            await self.send(RunConfig(config_id=config_id, init_payload_overrides=overrides))
            await asyncio.sleep(0.3)

    async def seed3_runs(self, pipeline: str) -> None:
        while not self.stop_load.is_set():
            run_id = uuid.uuid4()
            if await self.send(CreateRun(pipeline_id=pipeline, run_id=run_id)) != "accepted":
                continue
            await self.send(StartRun(run_id=run_id))
            await self.send(CompleteRun(run_id=run_id))

    async def inject_malformed(self) -> None:
        n = 0
        while not self.stop_load.is_set():
            kind, record = malformed_record(n, self.settings.max_message_bytes)
            n += 1
            if kind in self.args.skip_kind:
                continue
            self.ledger.malformed[str(n - 1)] = kind
            await self._publish(record)
            await asyncio.sleep(0.5)

    async def chaos_monkey(self) -> None:
        order = list(ROLES)
        while not self.stop_load.is_set():
            await asyncio.sleep(self.random.uniform(0.5, 1.5) * KILL_EVERY_S)
            if self.stop_load.is_set():
                return
            if not order:
                order = list(ROLES)
                self.random.shuffle(order)
            role = self.roles[order.pop()]
            await asyncio.to_thread(role.kill)
            await asyncio.sleep(self.random.uniform(0.1, 1.0))
            role.start()

    async def supervise(self) -> None:
        while True:
            for role in self.roles.values():
                role.ensure()
            await asyncio.sleep(0.5)

    # --- the run -------------------------------------------------------------------------

    async def run(self) -> dict[str, Any]:
        await self.producer.start()
        reader = asyncio.create_task(self.read_results())
        for role in self.roles.values():
            role.start()
        supervisor = asyncio.create_task(self.supervise())
        try:
            document = (REPO / "examples/orders.yaml").read_text()
            config = CreateConfig(name="orders", document=document)
            # The first answers wait for every role to start and join its group.
            assert await self.send(config, START_WAIT_S) == "accepted", "CreateConfig"
            assert await self.send(CreatePipeline(name="chaos-runs"), START_WAIT_S) == "accepted"
            load = [
                *(self.pipelines(i) for i in range(2)),
                self.config_runs(config.config_id),
                self.seed3_runs("chaos-runs"),
            ]
            if "malformed" in self.args.faults:
                load.append(self.inject_malformed())
            if "kill" in self.args.faults:
                load.append(self.chaos_monkey())
            tasks = [asyncio.create_task(c) for c in load]
            await asyncio.sleep(self.args.seconds)
            self.stop_load.set()
            await asyncio.gather(*tasks)
            return await self.settle()
        finally:
            supervisor.cancel()
            reader.cancel()
            for role in self.roles.values():
                await asyncio.to_thread(role.stop)
            await self.producer.stop()

    async def settle(self) -> dict[str, Any]:
        """Wait (up to SETTLE_S) for every answer, final executions and level read models,
        then check."""
        deadline = time.monotonic() + SETTLE_S
        url = self.settings.event_store_url
        ledger = self.ledger
        # The answers come from the results reader's task, one by one: polled.
        while time.monotonic() < deadline:
            if not set(ledger.published) - set(ledger.results):
                break
            await asyncio.sleep(0.5)
        unfinished = await asyncio.to_thread(unfinished_executions, url)
        while time.monotonic() < deadline and unfinished:
            await asyncio.sleep(1)
            unfinished = await asyncio.to_thread(unfinished_executions, url)
        differ = await asyncio.to_thread(compare_with_rebuild, url)
        while time.monotonic() < deadline and differ:
            await asyncio.sleep(1)
            differ = await asyncio.to_thread(compare_with_rebuild, url)
        dlq = await self.read_dlq()
        store = await asyncio.to_thread(examine_store, url)
        return {"unfinished": unfinished, "differ": differ, "dlq": dlq, "store": store}

    async def read_dlq(self) -> Counter[str]:
        """The DLQ records carrying MARK, by mark (a mark twice: dead-lettered twice)."""
        consumer = AIOKafkaConsumer(
            bootstrap_servers=self.settings.kafka_bootstrap_servers,
            auto_offset_reset="earliest",
        )
        await consumer.start()
        found: Counter[str] = Counter()
        try:
            # Up to the end now: a poisoned handler dead-letters the same record forever.
            dlq = self.topics.commands_dlq
            tps = [TopicPartition(dlq, p) for p in range(self.settings.partitions)]
            consumer.assign(tps)
            await consumer.seek_to_beginning(*tps)
            ends = await consumer.end_offsets(tps)
            deadline = time.monotonic() + 30

            async def behind() -> bool:
                return any([await consumer.position(tp) < end for tp, end in ends.items()])

            while time.monotonic() < deadline and await behind():
                batch = await consumer.getmany(timeout_ms=500)
                for records in batch.values():
                    for r in records:
                        for name, value in r.headers or ():
                            if name == MARK:
                                found[value.decode()] += 1
        finally:
            await consumer.stop()
        return found


def report(harness: Harness, found: dict[str, Any], elapsed: float) -> bool:
    ledger = harness.ledger
    store = found["store"]
    published = set(ledger.published)
    answered = published & set(ledger.results)
    lost = published - answered
    by_type: Counter[str] = Counter(ledger.published.values())
    outcomes = Counter(ledger.results[c][0].split()[0] for c in answered)
    rejections = Counter(
        f"{ledger.published[c]}: {ledger.results[c][0]}"
        for c in answered
        if ledger.results[c][0] != "accepted"
    )
    inconsistent = [c for c in answered if len(set(ledger.results[c])) > 1]
    twice_named = [n for n, k in store.pipelines_by_name.items() if k > 1]
    dlq: Counter[str] = found["dlq"]
    injected = set(ledger.malformed)
    kills = {name: role.kills for name, role in harness.roles.items()}
    exits = {name: role.exits for name, role in harness.roles.items() if role.exits}
    rows: list[tuple[str, str, bool]] = [
        ("commands published (distinct ids)", str(len(published)), True),
        ("  by type", ", ".join(f"{t} {n}" for t, n in sorted(by_type.items())), True),
        ("records sent (with copies and malformed)", str(ledger.sends), True),
        ("commands answered", f"{len(answered)} ({dict(outcomes)})", True),
        ("lost (published, never answered)", str(len(lost)), not lost),
        ("answers disagreeing for one id", str(len(inconsistent)), not inconsistent),
        ("event version gaps/repeats", str(len(store.version_gaps)), not store.version_gaps),
        ("pipeline names created twice", str(len(twice_named)), not twice_named),
        ("events in the store", str(store.events), True),
        ("aggregates", ", ".join(f"{t} {n}" for t, n in sorted(store.aggregates.items())), True),
        ("malformed injected", f"{len(injected)} ({len(set(ledger.malformed.values()))} kinds)",
         True),
        ("malformed in the DLQ (distinct)", str(len(injected & set(dlq))), injected <= set(dlq)),
        ("  DLQ records of them (redelivered too)", str(sum(dlq.values())), True),
        ("read models equal a rebuild", "yes" if not found["differ"] else str(found["differ"]),
         not found["differ"]),
        ("executions not final", str(len(found["unfinished"])), not found["unfinished"]),
        ("SIGKILLs", ", ".join(f"{n} {k}" for n, k in kills.items()), True),
        ("exits on their own (restarted)", str(exits or 0), True),
        ("load seconds / total seconds", f"{harness.args.seconds} / {elapsed:.0f}", True),
    ]  # fmt: skip
    print()
    print(f"chaos: store {harness.args.store}, faults {','.join(sorted(harness.args.faults))}, "
          f"seed {harness.args.seed}")  # fmt: skip
    width = max(len(r[0]) for r in rows)
    print(f"| {'check':{width}} | value | ok |")
    print(f"|{'-' * (width + 2)}|---|---|")
    for name, value, ok in rows:
        print(f"| {name:{width}} | {value} | {'yes' if ok else 'NO'} |")
    if rejections:
        print("rejected:", dict(rejections))
    if inconsistent:
        print(
            "answers disagreeing:",
            [(ledger.published[c], c, ledger.results[c]) for c in inconsistent],
        )
    if lost:
        print("lost:", sorted((ledger.published[c], c) for c in lost)[:20])
    if store.version_gaps:
        print("version gaps:", store.version_gaps[:10])
    if found["unfinished"]:
        print("unfinished:", found["unfinished"][:10])
    missing = sorted(injected - set(dlq), key=int)
    if missing:
        print("malformed not in the DLQ:", [(m, ledger.malformed[m]) for m in missing][:20])
    return all(ok for _, _, ok in rows)


async def main(args: argparse.Namespace) -> bool:
    tag = uuid.uuid4().hex[:8]
    work = Path(tempfile.mkdtemp(prefix="chaos-"))
    async with EmbeddedBroker(log_path=work / "broker.log") as broker:
        base = Settings(
            kafka_bootstrap_servers=broker.bootstrap_servers,
            topic_prefix=f"chaos.{tag}",
            consumer_group=f"chaos-{tag}",
            partitions=4,
            event_store_url=store_url(args.store, args.pg_url),
            execution_storage_dir=str(work / "executions"),
            orchestrator_liveness_s=3.0,
        )
        settings = base.model_copy(update=embedded_tuning(base))
        await create_topics(broker.bootstrap_servers, settings.topics.all(), partitions=4)
        harness = Harness(args, settings, work)
        started = time.monotonic()
        found = await harness.run()
        ok = report(harness, found, time.monotonic() - started)
        print(f"logs: {work}")
        return ok


def parse(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n")[0])
    parser.add_argument("--store", choices=["sqlite", "postgres"], default="sqlite")
    parser.add_argument("--seconds", type=float, default=60.0, help="how long the load runs")
    parser.add_argument("--faults", default="all", help="kill,dup,malformed or all or none")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--pg-url", default=PG_DEFAULT)
    parser.add_argument(
        "--skip-kind",
        action="append",
        default=[],
        help="a malformed kind not to inject (e.g. 'non-UTF-8 header'); repeatable",
    )
    args = parser.parse_args(argv)
    faults = {"kill", "dup", "malformed"} if args.faults == "all" else set(args.faults.split(","))
    unknown = faults - {"kill", "dup", "malformed", "none", ""}
    if unknown:
        parser.error(f"unknown faults: {sorted(unknown)}")
    args.faults = faults - {"none", ""}
    return args


def _terminate(*_: object) -> None:
    # SIGTERM (e.g. `timeout`) unwinds like Ctrl-C, so the role processes are stopped.
    raise KeyboardInterrupt


if __name__ == "__main__":
    signal.signal(signal.SIGTERM, _terminate)
    raise SystemExit(0 if asyncio.run(main(parse())) else 1)
