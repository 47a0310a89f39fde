"""RollupMigration metrics, aggregated like the operator's others (no per-object label):

* ``rollup_operator_migrations{state}``: migrations by state (Ready: cut over; Waiting: for an
  approval; Reconciling: the operator, ILM or the rollup job is moving; Stalled: a person must act),
  every state always present (0 when none), so alerts and dashboards see the series from the start;
* ``rollup_operator_migration_phase_age_seconds{state}``: the longest any migration in that state
  has been on its current phase (0 when none); RollupMigrationStuck fires on Reconciling above a day.

Read at scrape time from the runners' per-migration records (a collector, registered once).
"""

from __future__ import annotations

import time
import weakref
from typing import Any, Iterable, Protocol

from prometheus_client import REGISTRY
from prometheus_client.core import GaugeMetricFamily

STATES = ("Ready", "Waiting", "Reconciling", "Stalled")


class Source(Protocol):
    #: (namespace, name) -> (phase being worked on, state, since: wall-clock seconds)
    records: dict[tuple[str, str], tuple[str, str, float]]


class MigrationsCollector:
    def __init__(self) -> None:
        self.sources: "weakref.WeakSet[Any]" = weakref.WeakSet()

    def collect(self) -> Iterable[GaugeMetricFamily]:
        now = time.time()
        count = dict.fromkeys(STATES, 0)
        age = dict.fromkeys(STATES, 0.0)
        for src in list(self.sources):
            for _phase, state, since in list(src.records.values()):
                if state in count:
                    count[state] += 1
                    age[state] = max(age[state], now - since)
        g = GaugeMetricFamily("rollup_operator_migrations", "RollupMigrations by state.", labels=["state"])
        a = GaugeMetricFamily("rollup_operator_migration_phase_age_seconds",
                              "The longest time any RollupMigration in that state has been on its current phase.", labels=["state"])
        for s in STATES:
            g.add_metric([s], count[s])
            a.add_metric([s], age[s])
        yield g
        yield a


COLLECTOR = MigrationsCollector()
REGISTRY.register(COLLECTOR)


def track(source: Source) -> None:
    COLLECTOR.sources.add(source)
