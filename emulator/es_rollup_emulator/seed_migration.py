"""Seed an emulator with two jobs that show both outcomes of ``rollup-operator migration-plan``.

* ``sensor-5m`` rolls up the time series data stream ``metrics-sensor`` (``index.mode:
  time_series``, dimensions ``host`` and ``sensor``, gauge ``temperature``, counter
  ``requests_total``) by all its dimensions at a fixed 5m interval: downsampleable.
* ``weblogs-monthly`` rolls up the plain index ``weblogs`` by calendar month with a histogram
  group and per-field metrics: blocked (CalendarInterval, HistogramGroup, PerFieldMetrics,
  NotTimeSeriesDataStream).

Used by ``devtools/sandbox.py`` and the adoption tests; works on an ``ElasticsearchEmulator`` or an
``EmulatorThread`` (same methods).
"""

from __future__ import annotations

from typing import Any

TSDS_TEMPLATE: dict[str, Any] = {
    "index_patterns": ["metrics-sensor*"],
    "data_stream": {},
    "priority": 200,
    "template": {
        "settings": {"index.mode": "time_series", "index.routing_path": ["host", "sensor"]},
        "mappings": {"properties": {
            "host": {"type": "keyword", "time_series_dimension": True},
            "sensor": {"type": "keyword", "time_series_dimension": True},
            "temperature": {"type": "double", "time_series_metric": "gauge"},
            "requests_total": {"type": "long", "time_series_metric": "counter"},
        }},
    },
}

DOWNSAMPLEABLE = ("sensor-5m", {
    "index_pattern": "metrics-sensor",
    "rollup_index": "sensor-rollup",
    "cron": "0 */5 * * * ?",
    "groups": {"date_histogram": {"field": "@timestamp", "fixed_interval": "5m"},
               "terms": {"fields": ["host", "sensor"]}},
    "metrics": [{"field": "temperature", "metrics": ["min", "max", "sum", "value_count"]},
                {"field": "requests_total", "metrics": ["min", "max", "sum", "value_count"]}],
})

BLOCKED = ("weblogs-monthly", {
    "index_pattern": "weblogs",
    "rollup_index": "weblogs-rollup",
    "cron": "0 0 1 * * ?",
    "groups": {"date_histogram": {"field": "timestamp", "calendar_interval": "1M", "time_zone": "Europe/Berlin"},
               "terms": {"fields": ["status"]},
               "histogram": {"fields": ["bytes"], "interval": 1024}},
    "metrics": [{"field": "bytes", "metrics": ["sum", "avg"]}, {"field": "latency_ms", "metrics": ["max"]}],
})

WEBLOGS_MAPPINGS = {"properties": {"timestamp": {"type": "date"}, "status": {"type": "keyword"},
                                   "bytes": {"type": "long"}, "latency_ms": {"type": "float"}}}


def seed(emu, *, states: tuple[str, str] = ("started", "stopped")) -> list[str]:
    """Create the sources and the two jobs; returns their ids."""
    emu.put_index_template("metrics-sensor", TSDS_TEMPLATE)
    emu.create_data_stream("metrics-sensor")
    emu.create_index("weblogs", WEBLOGS_MAPPINGS)
    for (job_id, config), state in zip((DOWNSAMPLEABLE, BLOCKED), states):
        emu.add_job(job_id, config, state=state)
    return [DOWNSAMPLEABLE[0], BLOCKED[0]]
