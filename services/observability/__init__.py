"""What operators see of a running process (docs/operations.md): Prometheus metrics
(`metrics` counted by the roles, `collectors` read at scrape time, `exposition` served),
OpenTelemetry traces (`tracing`, `trace_hops`, `trace_links`) and log lines with
correlation ids (`logs`)."""
