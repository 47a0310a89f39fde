"""Prometheus collectors. Every metric the operator exports is defined here and documented in docs/operations.md."""

from __future__ import annotations

from prometheus_client import Counter, Gauge, Histogram

RECONCILES = Counter(
    "rollup_operator_reconcile_passes_total",
    "Reconcile passes of RollupJobs, by the phase the pass ended in (Ready, Progressing, Stalled, Suspended, InvalidSpec).",
    ["result"],
)
ES_REQUESTS = Histogram(
    "rollup_operator_elasticsearch_request_duration_seconds",
    "Latency of Elasticsearch requests by API (get_jobs, stop, start, create, delete, info) and HTTP status ('error' when no answer).",
    ["api", "status"],
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120),
)
STOP_DURATION = Histogram(
    "rollup_operator_stop_duration_seconds",
    "Time from the first stop call of a RollupJob to the job being confirmed stopped.",
    # Up to 6 h, so that a quantile can show stops of more than an hour (alert RollupStopsSlow).
    buckets=(0.1, 0.5, 1, 2, 5, 10, 30, 60, 120, 300, 600, 1800, 3600, 7200, 21600),
)
STOP_TIMEOUTS = Counter(
    "rollup_operator_stop_timeouts_total",
    "Stop calls whose wait_for_completion timed out (the job was still stopping; the operator retried).",
)
# rollup_operator_jobs{state,desired}, rollup_operator_job_conditions{type,status,reason} and
# rollup_operator_connection_conditions{type,status,reason} are computed at scrape time: see metrics_collector.py
CONNECTION_UP = Gauge(
    "rollup_operator_connection_up",
    "1 if the last read through an ElasticsearchConnection succeeded, else 0.",
    ["namespace", "connection"],
)
K8S_WRITES = Counter(
    "rollup_operator_kubernetes_writes_total",
    "Writes the operator made to the Kubernetes API, by kind (status, finalizer, event).",
    ["kind"],
)
LEADER = Gauge(
    "rollup_operator_leader",
    "1 while this process holds the leader election Lease (or runs without leader election), else 0.",
)
LEADER_TRANSITIONS = Counter(
    "rollup_operator_leader_transitions",
    "Times this process acquired the leader election Lease.",
)
