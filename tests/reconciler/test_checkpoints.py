"""The checkpoint table (services.reconciler.checkpoints) on SQLite and PostgreSQL."""

from __future__ import annotations

from uuid import uuid4

from aiokafka import TopicPartition

from services.reconciler.checkpoints import Checkpoints


def test_a_checkpoint_replaces_the_previous_one_per_pipeline(store_url: str) -> None:
    one, other = uuid4(), uuid4()
    a0, a1, b0 = TopicPartition("a", 0), TopicPartition("a", 1), TopicPartition("b", 0)
    checkpoints = Checkpoints(store_url)
    try:
        assert checkpoints.of(one) == {}
        checkpoints.record(one, {"r1": {a0: 3, a1: 0}, "r2": {b0: 7}})
        checkpoints.record(other, {"r1": {a0: 1}})
        assert checkpoints.of(one) == {"r1": {a0: 3, a1: 0}, "r2": {b0: 7}}
        # The next checkpoint is the whole of it: a route gone from the config is gone.
        checkpoints.record(one, {"r1": {a0: 5, a1: 2}})
        assert checkpoints.of(one) == {"r1": {a0: 5, a1: 2}}
        assert checkpoints.of(other) == {"r1": {a0: 1}}
        again = Checkpoints(store_url)  # a second process: the table exists already
        try:
            assert again.of(one) == {"r1": {a0: 5, a1: 2}}
        finally:
            again.close()
    finally:
        checkpoints.close()
