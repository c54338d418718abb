"""Route workers on the real broker (tests.runtimes.orchestrator.chain_support): when an
execution drains — a message filtered out on the way, an execution the lookup learns of
late, many executions at once — and that one cancelled while its message was in the
adapters publishes nothing."""

from __future__ import annotations

import pytest

from services.runtimes.orchestrator.ledger import RouteCounts
from services.runtimes.orchestrator.route_batch import Fate
from tests.runtimes.orchestrator.chain_support import Chain, module_chain
from tests.runtimes.orchestrator.worker_support import init_record
from tests.waiting import eventually

pytestmark = pytest.mark.broker

chain = module_chain()


async def test_a_filtered_out_message_still_drains_the_execution(chain: Chain) -> None:
    execution = await chain.start({"n": -1})
    await eventually(lambda: chain.outcomes.drained[execution] > 0, "the execution to drain")
    assert chain.ledger.counts(execution)["c"] == RouteCounts(2, 2, 0)
    assert chain.storage.produced(execution, "c") == []


async def test_cancelled_while_in_the_adapters_its_outputs_are_not_published(
    chain: Chain,
) -> None:
    finished_before = chain.fates("a").get(Fate.FINISHED, 0)
    # Running when a takes the message, cancelled when its adapters are done.
    quiet = chain.executions.add()
    chain.executions.cancel_after(quiet, 1)
    # Running when a takes it, failing, cancelled before the retry: no dead letter.
    failing = chain.executions.add()
    chain.executions.cancel_after(failing, 1)
    await chain.send(init_record(quiet, {"n": 4}))
    await chain.send(init_record(failing, {"n": 4, "explode": True}))
    await eventually(
        lambda: chain.fates("a").get(Fate.FINISHED, 0) >= finished_before + 2, "a to skip both"
    )
    for execution in (quiet, failing):
        assert chain.ledger.counts(execution) == {}
        assert chain.storage.routes(execution) == []
        assert (chain.outcomes.drained[execution], chain.outcomes.failed[execution]) == (0, 0)


async def test_an_execution_the_lookup_learns_late_is_processed(chain: Chain) -> None:
    execution = chain.executions.add()
    chain.executions.hide(execution, 1)  # the read model lags the init message
    await chain.send(init_record(execution, {"n": 6}))
    await eventually(lambda: chain.outcomes.drained[execution] > 0, "the execution to drain")
    assert chain.executions.asks[execution] >= 2


async def test_many_executions_at_once_each_drain(chain: Chain) -> None:
    executions = [await chain.start({"n": n}) for n in range(20)]
    await eventually(lambda: all(chain.outcomes.drained[e] > 0 for e in executions), "all to drain")
    for execution in executions:
        assert chain.ledger.counts(execution)["c"] == RouteCounts(2, 2, 0)
        assert chain.outcomes.failed[execution] == 0
