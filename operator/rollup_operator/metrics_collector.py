"""The jobs-by-state gauge, computed at scrape time from the controller's memory (no per-write cost)."""

from __future__ import annotations

from collections import Counter

from prometheus_client.core import GaugeMetricFamily


class JobsCollector:
    def __init__(self, controller):
        self.controller = controller

    def collect(self):
        g = GaugeMetricFamily(
            "rollup_operator_jobs",
            "RollupJobs by the job state the server last reported (status.jobState) and desired state.",
            labels=["state", "desired"],
        )
        counts: Counter = Counter()
        for rt in list(self.controller.jobs.values()):
            desired = rt.spec.desired if rt.spec else "invalid"
            counts[(rt.status.get("jobState") or "unknown", desired)] += 1
        for (state, desired), n in sorted(counts.items()):
            g.add_metric([state, desired], n)
        yield g

    def describe(self):
        return []
