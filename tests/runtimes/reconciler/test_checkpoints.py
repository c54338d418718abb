"""The checkpoint table (services.runtimes.reconciler.checkpoints) on SQLite and PostgreSQL."""

from __future__ import annotations

from uuid import uuid4

from aiokafka import TopicPartition

from services.runtimes.reconciler.checkpoints import Checkpoints, Head


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


def test_a_checkpoint_keeps_the_config_it_was_taken_at(store_url: str) -> None:
    one, config = uuid4(), uuid4()
    a0 = TopicPartition("a", 0)
    checkpoints = Checkpoints(store_url)
    try:
        assert checkpoints.head(one) is None
        checkpoints.record(one, {"r1": {a0: 3}}, Head(config, 2, sequence_number=4))
        assert checkpoints.head(one) == Head(config, 2, 4)
        checkpoints.record(one, {"r1": {a0: 5}}, Head(config, 3))
        assert checkpoints.head(one) == Head(config, 3, 0)
        # One recorded without a head (as before heads existed): its config is unknown.
        checkpoints.record(one, {"r1": {a0: 6}})
        assert checkpoints.head(one) is None
        assert checkpoints.of(one) == {"r1": {a0: 6}}
    finally:
        checkpoints.close()


def test_forget_deletes_one_pipelines_checkpoint_and_head(store_url: str) -> None:
    one, other, config = uuid4(), uuid4(), uuid4()
    a0 = TopicPartition("a", 0)
    checkpoints = Checkpoints(store_url)
    try:
        checkpoints.record(one, {"r1": {a0: 3}}, Head(config, 1))
        checkpoints.record(other, {"r1": {a0: 4}}, Head(config, 2))
        checkpoints.forget(one)
        assert (checkpoints.of(one), checkpoints.head(one)) == ({}, None)
        assert (checkpoints.of(other), checkpoints.head(other)) == (
            {"r1": {a0: 4}},
            Head(config, 2),
        )
        checkpoints.forget(one)  # nothing left: nothing happens
    finally:
        checkpoints.close()
