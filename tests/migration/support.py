"""The scenario of the migration tests: a legacy source, a RollupJob over metrics-sensor*, the
RollupMigration onto the time series data stream metrics-sensor, and the data written side by side."""

from __future__ import annotations

import time
from typing import Any

from tests.integration.support import Cluster, condition

TARGET = "metrics-sensor"
LEGACY = "metrics-sensor-legacy"
LEGACY_MAPPINGS = {"properties": {"@timestamp": {"type": "date"}, "host": {"type": "keyword"}, "sensor": {"type": "keyword"},
                                  "temperature": {"type": "double"}, "requests_total": {"type": "long"}}}
FIXED_CONFIG = {
    "indexPattern": "metrics-sensor*", "rollupIndex": "sensor-rollup", "cron": "0 0 0 1 1 ?", "pageSize": 1000,
    "groups": {"dateHistogram": {"field": "@timestamp", "fixedInterval": "5m"}, "terms": {"fields": ["host", "sensor"]}},
    "metrics": [{"field": "temperature", "metrics": ["min", "max", "sum", "value_count", "avg"]},
                {"field": "requests_total", "metrics": ["min", "max", "sum", "value_count", "avg"]}],
}
CALENDAR_CONFIG = {**FIXED_CONFIG, "rollupIndex": "sensor-rollup-cal",
                   "groups": {"dateHistogram": {"field": "@timestamp", "calendarInterval": "1h"}, "terms": {"fields": ["host"]}}}
IV_MS = 5 * 60_000


def window_start() -> int:
    """The first 5m bucket of the data: 90 minutes ago, aligned (inside the first backing index's range)."""
    return (int(time.time() * 1000) - 90 * 60_000) // IV_MS * IV_MS


def sensor_docs(start_ms: int, buckets: int = 12) -> list[dict[str, Any]]:
    docs = []
    for b in range(buckets):
        for host, base in (("a", 20.0), ("b", 30.0)):
            for i in range(3):
                ts = start_ms + b * IV_MS + i * 60_000
                docs.append({"@timestamp": ts, "host": host, "sensor": "s1", "temperature": base + b + i * 0.5,
                             "requests_total": 100 * b + i})
    return docs


def setup_job(cluster: Cluster, emu, name: str = "sensor-5m", config: dict | None = None) -> None:
    emu.create_index(LEGACY, LEGACY_MAPPINGS)
    emu.seed_rollup_usage()  # 8.15+: new jobs need rollup usage on the cluster (an index with _meta._rollup)
    cluster.connection("es", emu.url)
    cluster.job(name, "started", config=config or FIXED_CONFIG)
    cluster.wait_ready(name, timeout=30)


def migration(cluster: Cluster, name: str, job: str = "sensor-5m", **spec: Any) -> dict:
    body_spec = {"jobRef": {"name": job}, "targetDataStream": TARGET, **spec}
    return cluster._create("rollupmigrations", "RollupMigration", name, body_spec)


def get(cluster: Cluster, name: str) -> dict:
    return cluster.get(name, "rollupmigrations")


def wait_phase(cluster: Cluster, name: str, phase: str, timeout: float = 40, reason: str | None = None) -> dict:
    def pred(o: dict) -> bool:
        st = o.get("status") or {}
        ok = st.get("phase") == phase and st.get("observedGeneration") == o["metadata"]["generation"]
        return ok and (reason is None or condition(o, "Ready").get("reason") == reason)
    return cluster.wait(name, pred, timeout, f"phase {phase}" + (f" reason {reason}" if reason else ""), plural="rollupmigrations")


def run_side_by_side(emu, job_id: str, start_ms: int, late: dict[str, Any] | None = None) -> None:
    """Data into the data stream, a rollup run, (a late document), then ILM two days later: rollover + downsample."""
    emu.index_docs(TARGET, sensor_docs(start_ms))
    assert emu.rollup_now(job_id) > 0
    if late is not None:
        emu.index_docs(TARGET, [late])
    steps = [s["step"] for s in emu.run_ilm("2d")]
    assert steps == ["rollover", "downsample"], steps
