"""Chaos harness: the roles as separate processes under load, killed and fed bad input.

On the embedded broker and SQLite or PostgreSQL it runs handler, relay, projector,
orchestrator and reconciler (`pipelines serve --role X` each), pushes a mixed workload
(pipelines created, started and stopped through the reconciler; configs run through
their routes, examples/orders.yaml; seed-003 runs created, started and completed) and
injects faults: SIGKILL of a role every few seconds (restarted at once), every command
sent three times, malformed records of 11 kinds on the commands topic, and, one after
the other while the load runs: the broker paused (SIGSTOP) for 15 s, PostgreSQL
restarted (--store postgres), and consumer-group rebalances (a second handler started,
stopped with SIGINT, started again; the same for the orchestrator). For each of these it
measures the recovery: from the fault's end until a command published after it is
answered, a config execution created after it is final, and the longest gaps between
answers and between executions becoming final in the window after it; over
RECOVERY_LIMIT_S is a failure. Then it checks and
prints: every command answered, no duplicate effect, every malformed record in the DLQ,
read models equal to a rebuild, every execution final. Exit code 1 on a failure.

    uv run --frozen python -m benchmarks.chaos --store sqlite --seconds 60 --faults all
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import functools
import itertools
import random
import signal
import tempfile
import time
import uuid
from collections import Counter, defaultdict
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition

from benchmarks.bench import PG_DEFAULT, store_url
from benchmarks.chaos_support import (
    MARK,
    REPO,
    ROLES,
    PausableBroker,
    Role,
    RunsProbe,
    compare_with_rebuild,
    examine_store,
    malformed_record,
    restart_postgres,
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
from contracts.cloudevents import decode_result, encode_command
from contracts.envelope import KafkaRecord
from contracts.errors import WireError
from contracts.results import CommandRejected
from projections.times import sort_key
from services.adapters.kafka.embedded_broker import create_topics, embedded_tuning
from services.settings import Settings

RESULT_WAIT_S = 20.0  # per command during the load; the end waits again
SETTLE_S = 90.0
START_WAIT_S = 120.0  # the end: answers, final executions, read models level
KILL_EVERY_S = 3.0
PAUSE_S = 15.0  # the broker stopped this long
RECOVERY_LIMIT_S = 30.0  # every role must make progress again within this of a fault's end
MEASURE_MAX_S = 45.0  # how long after a fault's end the harness looks for that progress
REBALANCE_WINDOW_S = 20.0  # between the membership changes of a rebalance
WARMUP_S = 10.0  # load before the first timed fault
DIAGNOSE_AFTER_S = 10.0  # without progress: the PostgreSQL lock waits are printed
KILLS_BETWEEN_S = 10.0  # of kills between two timed faults (with the kill fault)
FAULTS = ("kill", "dup", "malformed", "pause", "pgrestart", "rebalance")
# The timed faults, run one after the other in this order while the load runs.
TIMED = ("pause", "pgrestart", "rebalance")


@dataclass
class Recovery:
    """One timed fault and how long the workload took to move again after it ended."""

    name: str
    lasted_s: float  # from the fault's start to its end (the pause, restart to pg_isready)
    ended: float  # monotonic
    ended_key: str  # the end as the read models' created_key
    exits_before: int
    answers_s: float | None = None  # a command published after the end answered
    runs_s: float | None = None  # a config execution created after the end final
    gap_s: float | None = None  # longest time without an answer in the window after the end
    runs_gap_s: float | None = None  # ... without a config execution becoming final
    exits: int = 0  # role processes that exited by themselves meanwhile

    def worst(self) -> float | None:
        measured = [self.answers_s, self.runs_s, self.gap_s, self.runs_gap_s]
        return None if None in measured else max(m for m in measured if m is not None)

    def ok(self) -> bool:
        worst = self.worst()
        return worst is not None and worst <= RECOVERY_LIMIT_S


class Ledger:
    """What was published and what came back, by command id."""

    def __init__(self) -> None:
        self.published: dict[str, str] = {}  # command id -> command type
        self.sent_at: dict[str, float] = {}  # command id -> first publish (monotonic)
        self.results: dict[str, list[str]] = defaultdict(list)  # id -> outcomes seen
        self.answered_at: dict[str, float] = {}  # command id -> first answer (monotonic)
        self.waiting: dict[str, asyncio.Event] = {}
        self.malformed: dict[str, str] = {}  # mark -> kind
        self.sends = 0

    def answered(self, command_id: str, outcome: str) -> None:
        self.results[command_id].append(outcome)
        if command_id in self.published:
            self.answered_at.setdefault(command_id, time.monotonic())
        if (event := self.waiting.get(command_id)) is not None:
            event.set()


class Harness:
    def __init__(
        self, args: argparse.Namespace, settings: Settings, logs: Path, broker: PausableBroker
    ) -> None:
        self.args = args
        self.settings = settings
        self.broker = broker
        self.random = random.Random(args.seed)
        self.ledger = Ledger()
        self.roles = {name: Role(name, settings, logs / f"{name}.log") for name in ROLES}
        # The second process of a role for the rebalance fault: never killed by the monkey.
        self.extras = {
            name: Role(f"{name}-2", settings, logs / f"{name}-2.log", role=name)
            for name in ("handler", "orchestrator")
        }
        for extra in self.extras.values():
            extra.held = True  # not running until the rebalance starts it
        self.recoveries: list[Recovery] = []
        self.load_started = float("inf")
        # Set while a timed fault runs and is measured: the kills wait, so that what is
        # measured is the recovery from that fault (they go on between the timed faults).
        self.timing = asyncio.Event()
        self.runs_probe = RunsProbe(settings.event_store_url)
        self.producer = AIOKafkaProducer(
            bootstrap_servers=settings.kafka_bootstrap_servers, max_request_size=4 * 1024 * 1024
        )
        self.topics = settings.topics
        self.stop_load = asyncio.Event()

    # --- publishing and waiting ----------------------------------------------------------

    async def send(
        self, command: Command, wait_s: float = RESULT_WAIT_S, patient: bool = False
    ) -> str | None:
        """Publish (three times with the dup fault); answers the outcome, None on no answer
        within `wait_s`. A `patient` send waits on (up to START_WAIT_S): its command takes
        effect when it is decided, however late, and the next step depends on it."""
        record = encode_command(command)
        command_id = dict(record.headers)["ce_id"].decode()
        self.ledger.published[command_id] = command.command_type()
        self.ledger.sent_at.setdefault(command_id, time.monotonic())
        event = self.ledger.waiting.setdefault(command_id, asyncio.Event())
        copies = 3 if "dup" in self.args.faults else 1
        for _ in range(copies):
            await self._publish(record)
        try:
            await asyncio.wait_for(event.wait(), START_WAIT_S if patient else wait_s)
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
                        outcome: str = result.outcome
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
            # Patient: a run created after its answer was given up on would stay pending.
            create = CreateRun(pipeline_id=pipeline, run_id=run_id)
            if await self.send(create, patient=True) != "accepted":
                continue
            await self.send(StartRun(run_id=run_id), patient=True)
            await self.send(CompleteRun(run_id=run_id), patient=True)

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
            if self.timing.is_set():
                continue
            if not order:
                order = list(ROLES)
                self.random.shuffle(order)
            role = self.roles[order.pop()]
            await asyncio.to_thread(role.kill)
            await asyncio.sleep(self.random.uniform(0.1, 1.0))
            role.start()

    async def supervise(self) -> None:
        while True:
            for role in [*self.roles.values(), *self.extras.values()]:
                role.ensure()
            await asyncio.sleep(0.5)

    # --- the timed faults ----------------------------------------------------------------

    def exits(self) -> int:
        return sum(len(r.exits) for r in [*self.roles.values(), *self.extras.values()])

    async def timed_faults(self) -> None:
        """The pause, the PostgreSQL restart and the rebalances, one after the other, each
        measured before the next starts."""
        await asyncio.sleep(WARMUP_S)
        if "pause" in self.args.faults:
            await self.quiet()
            started = time.monotonic()
            self.broker.pause()
            try:
                await asyncio.sleep(PAUSE_S)
            finally:
                self.broker.resume()
            await self.measure(f"broker paused {PAUSE_S:.0f} s", started)
        if "pgrestart" in self.args.faults:
            await self.quiet()
            started = time.monotonic()
            await restart_postgres(self.args.pg_url)
            await self.measure("PostgreSQL restarted", started)
        if "rebalance" in self.args.faults:
            for name, extra in self.extras.items():
                leave = functools.partial(extra.retire, signal.SIGINT)
                steps: list[tuple[str, Callable[[], None]]] = [
                    ("1 -> 2", extra.start),
                    ("2 -> 1 (SIGINT)", leave),
                    ("1 -> 2", extra.start),
                ]
                await self.quiet()
                for change, act in steps:
                    started = time.monotonic()
                    await asyncio.to_thread(act)
                    # The group stalls when the change reaches the broker (a join held,
                    # a leave): the gap is counted from the change, not after it.
                    await self.measure(f"{name}s {change}", started, REBALANCE_WINDOW_S, True)
                self.timing.clear()
                await asyncio.sleep(KILLS_BETWEEN_S if "kill" in self.args.faults else 0)

    async def quiet(self) -> None:
        """Stop the kills, then wait until the roles killed last are back: a command sent
        now is answered and a config execution created now is final (a killed role
        restarting is not the fault timed)."""
        self.timing.set()
        deadline = time.monotonic() + START_WAIT_S
        since = sort_key(datetime.now(UTC)) or ""
        while (
            await self.send(CreatePipeline(name=f"chaos-probe-{uuid.uuid4().hex[:8]}"), 5.0) is None
        ):
            if time.monotonic() > deadline:
                print("chaos: no answer for a while before a timed fault", flush=True)
                return
        while not (await asyncio.to_thread(self.runs_probe.finished_since, since))[0]:
            if time.monotonic() > deadline:
                print("chaos: no execution final for a while before a timed fault", flush=True)
                return
            await asyncio.sleep(0.25)

    async def measure(
        self, name: str, started: float, window_s: float = 0.0, gap_from_start: bool = False
    ) -> Recovery:
        """From now (the fault's end): when a command published after it is answered and
        a config execution created after it is final (up to MEASURE_MAX_S), and the
        longest gaps between answers and between executions becoming final over the next
        `window_s` (at least until both), from the end or, with `gap_from_start`, from
        `started`."""
        ended = time.monotonic()
        found = Recovery(
            name, ended - started, ended, sort_key(datetime.now(UTC)) or "", self.exits()
        )
        self.recoveries.append(found)
        ledger = self.ledger
        since = started if gap_from_start else ended
        finished: list[float] = []  # when the count of final config executions grew
        last_count: int | None = None
        diagnosed = False
        while (now := time.monotonic()) < ended + MEASURE_MAX_S:
            if found.answers_s is None:
                after = [
                    ledger.answered_at[c] - ended
                    for c, sent in list(ledger.sent_at.items())
                    if sent >= ended and c in ledger.answered_at
                ]
                found.answers_s = min(after) if after else None
            seen, count = await asyncio.to_thread(self.runs_probe.finished_since, found.ended_key)
            if seen and found.runs_s is None:
                found.runs_s = now - ended
            if count is not None:
                if last_count is not None and count > last_count:
                    finished.append(now)
                last_count = count
            if None not in (found.answers_s, found.runs_s) and now >= ended + window_s:
                break
            stuck = None in (found.answers_s, found.runs_s)
            if stuck and not diagnosed and now > ended + DIAGNOSE_AFTER_S:
                diagnosed = True  # stuck for a while: who waits on whom, for the report
                for line in await asyncio.to_thread(self.runs_probe.lock_waits):
                    print(f"chaos: {name}: lock wait: {line}", flush=True)
            await asyncio.sleep(0.25)
        horizon = min(time.monotonic(), ended + max(window_s, MEASURE_MAX_S))
        found.gap_s = _longest_gap(since, ledger.answered_at.values(), horizon)
        found.runs_gap_s = _longest_gap(since, finished, horizon)
        found.exits = self.exits() - found.exits_before
        print(f"chaos: {_recovery_text(found)}", flush=True)
        if not window_s:  # one fault, not a rebalance's step: the kills go on a while
            self.timing.clear()
            await asyncio.sleep(KILLS_BETWEEN_S if "kill" in self.args.faults else 0)
        return found

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
            self.load_started = time.monotonic()
            tasks = [asyncio.create_task(c) for c in load]
            # The load runs --seconds, longer when the timed faults need it.
            timed = asyncio.create_task(self.timed_faults())
            await asyncio.sleep(self.args.seconds)
            await timed
            self.stop_load.set()
            await asyncio.gather(*tasks)
            return await self.settle()
        finally:
            supervisor.cancel()
            reader.cancel()
            with contextlib.suppress(OSError, AssertionError):
                self.broker.resume()  # an interrupted pause must not leave it stopped
            for role in [*self.roles.values(), *self.extras.values()]:
                await asyncio.to_thread(role.stop)
            self.runs_probe.close()
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


def _longest_gap(since: float, times: Iterable[float], until: float) -> float | None:
    """The longest interval in [since, until] without one of `times` (None: none in it)."""
    inside = sorted(t for t in times if since <= t <= until)
    if not inside:
        return None
    return max(b - a for a, b in itertools.pairwise([since, *inside, until]))


def _seconds(value: float | None) -> str:
    return "none" if value is None else f"{value:.1f} s"


def _recovery_text(r: Recovery, with_name: bool = True) -> str:
    text = (
        f"{_seconds(r.worst())} (answers {_seconds(r.answers_s)}, runs {_seconds(r.runs_s)}, "
        f"longest gaps: answers {_seconds(r.gap_s)}, runs {_seconds(r.runs_gap_s)}; "
        f"fault {r.lasted_s:.1f} s, exits {r.exits})"
    )
    return f"{r.name}: {text}" if with_name else text


def report(harness: Harness, found: dict[str, Any], elapsed: float) -> bool:
    ledger = harness.ledger
    store = found["store"]
    published = set(ledger.published)
    answered = published & set(ledger.results)
    lost = published - answered
    # The load's commands only: the first ones wait for every role to start.
    latency = sorted(
        ledger.answered_at[c] - ledger.sent_at[c]
        for c in ledger.answered_at
        if ledger.sent_at[c] >= harness.load_started
    )
    internal = [c for c in answered if "InternalError" in ledger.results[c][0]]
    late = sum(1 for t in latency if t > RESULT_WAIT_S)
    p50 = latency[len(latency) // 2] if latency else 0.0
    p99 = latency[int(len(latency) * 0.99)] if latency else 0.0
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
        ("answer latency p50 / p99 / max",
         f"{p50:.2f} / {p99:.2f} / {latency[-1] if latency else 0:.2f} s", True),
        (f"answers later than {RESULT_WAIT_S:.0f} s", str(late), True),
        ("answers disagreeing for one id", str(len(inconsistent)), not inconsistent),
        ("answered InternalError (a 500, recorded)", str(len(internal)), not internal),
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
        *((f"recovery: {r.name}", _recovery_text(r, with_name=False), r.ok())
          for r in harness.recoveries),
        ("read-model probe: failures, slowest query",
         f"{harness.runs_probe.failures}, {harness.runs_probe.slowest_s:.1f} s", True),
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
    for r in harness.recoveries:
        if not r.ok():
            print(f"FAILURE: recovery after '{r.name}' over {RECOVERY_LIMIT_S:.0f} s or unseen")
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
    async with PausableBroker(log_path=work / "broker.log") as broker:
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
        harness = Harness(args, settings, work, broker)
        started = time.monotonic()
        found = await harness.run()
        ok = report(harness, found, time.monotonic() - started)
        print(f"logs: {work}")
        return ok


def parse(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n")[0])
    parser.add_argument("--store", choices=["sqlite", "postgres"], default="sqlite")
    parser.add_argument("--seconds", type=float, default=60.0, help="how long the load runs")
    parser.add_argument(
        "--faults",
        default="all",
        help=f"some of {','.join(FAULTS)}, or all (pgrestart with postgres only) or none",
    )
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--pg-url", default=PG_DEFAULT)
    parser.add_argument(
        "--skip-kind",
        action="append",
        default=[],
        help="a malformed kind not to inject (e.g. 'non-UTF-8 header'); repeatable",
    )
    args = parser.parse_args(argv)
    if args.faults == "all":
        faults = set(FAULTS) - ({"pgrestart"} if args.store != "postgres" else set())
    else:
        faults = set(args.faults.split(","))
    unknown = faults - {*FAULTS, "none", ""}
    if unknown:
        parser.error(f"unknown faults: {sorted(unknown)}")
    if "pgrestart" in faults and args.store != "postgres":
        parser.error("pgrestart needs --store postgres")
    args.faults = faults - {"none", ""}
    return args


def _terminate(*_: object) -> None:
    # SIGTERM (e.g. `timeout`) unwinds like Ctrl-C, so the role processes are stopped.
    raise KeyboardInterrupt


if __name__ == "__main__":
    signal.signal(signal.SIGTERM, _terminate)
    raise SystemExit(0 if asyncio.run(main(parse())) else 1)
