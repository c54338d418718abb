"""OpenLineage out (docs/lineage.md): the relay role's follower that emits a RunEvent for
every start and end of a config execution or a pipeline run.

- `run_events`: the RunEvents one stored status change is (pure: the mapping tables);
- `run_history`: what the event store says about the run (its job, topics, parent);
- `sinks`: where the events go (a Kafka topic, or one of the client's transports);
- `emitter`: the follower of the notification log, with its own position.
"""
