"""The route counts table (services.runtimes.reconciler.route_stats) on SQLite and
PostgreSQL: what the reconciler writes down for `GET /v0/pipelines/{name}/stats`."""

from __future__ import annotations

from uuid import uuid4

from services.runtimes.reconciler.route_stats import RouteCounts, RouteStats


def test_counts_belong_to_one_deployment_and_are_replaced_whole(store_url: str) -> None:
    pipeline, other = uuid4(), uuid4()
    first, second = uuid4(), uuid4()
    a = RouteCounts("a", "in.a", ["out.a", "out.b"], consumed=3, produced=3, batches=2)
    b = RouteCounts("b", "in.b", consuming=True, last_error="broker down", retries=1)
    stats = RouteStats(store_url)
    try:
        assert stats.of(pipeline, first) == []
        stats.record(pipeline, first, [b, a])
        stats.record(other, first, [a])
        assert stats.of(pipeline, first) == [a, b]  # by route
        assert stats.of(pipeline, second) == []  # another deployment's counts are not these
        stats.record(pipeline, second, [RouteCounts("a", "in.a")])
        assert stats.of(pipeline, first) == []
        assert stats.of(pipeline, second) == [RouteCounts("a", "in.a")]
        again = RouteStats(store_url)  # another process (the API): the table exists already
        try:
            assert again.of(other, first) == [a]
            again.forget(other)
            assert stats.of(other, first) == []
        finally:
            again.close()
    finally:
        stats.close()
