"""The gauges computed at scrape time from the controller's store (no per-write cost).

* ``rollup_operator_jobs{state,desired}``: RollupJobs by the job state last reported and the desired state;
* ``rollup_operator_job_conditions{type,status,reason}``: RollupJobs by their stored status conditions;
* ``rollup_operator_connection_conditions{type,status,reason}``: the same for ElasticsearchConnections.

Each object counts once per condition type (Ready, Reconciling, Stalled), so summed over
``status`` and ``reason`` one type gives the number of objects. An object whose stored status has
no condition of a type yet (no pass has written it) counts as ``status="Unknown"``, ``reason=""``,
as the Kubernetes conventions read a missing condition. The reasons are the operator's own
(docs/reference/conditions.md): the status subresource is written by the operator only, so the
label's values are that bounded set, and there is no per-object label (``kubectl get rj -A`` says which).
"""

from __future__ import annotations

from collections import Counter
from typing import Any, Iterable, Iterator, Mapping

from prometheus_client.core import GaugeMetricFamily

from rollup_operator.job.status import CONDITION_ORDER

UNKNOWN = "Unknown"
_TYPES = frozenset(CONDITION_ORDER)
_STATUSES = frozenset({"True", "False"})


def condition_counts(statuses: Iterable[Mapping[str, Any]]) -> Counter[tuple[str, str, str]]:
    """(type, status, reason) -> number of objects, over the stored statuses given."""
    counts: Counter[tuple[str, str, str]] = Counter()
    for status in statuses:
        seen: dict[str, tuple[str, str, str]] = {}
        for c in status.get("conditions") or ():
            type_ = c.get("type") if isinstance(c, Mapping) else None
            if type_ in _TYPES and type_ not in seen:  # the first of a type, as conditions.get reads it
                value, reason = c.get("status"), c.get("reason")
                seen[type_] = (type_, value if value in _STATUSES else UNKNOWN, reason if isinstance(reason, str) else "")
        for type_ in CONDITION_ORDER:
            counts[seen.get(type_) or (type_, UNKNOWN, "")] += 1
    return counts


def _conditions_family(name: str, what: str, statuses: Iterable[Mapping[str, Any]]) -> GaugeMetricFamily:
    g = GaugeMetricFamily(
        name,
        f"{what} by their stored status conditions: type (Ready, Reconciling, Stalled), status (True, False, "
        "Unknown: not written yet) and reason (docs/reference/conditions.md). Each object counts once per type.",
        labels=["type", "status", "reason"],
    )
    for (type_, status, reason), n in sorted(condition_counts(statuses).items()):
        g.add_metric([type_, status, reason], n)
    return g


class JobsCollector:
    def __init__(self, controller: Any) -> None:
        self.controller = controller

    def collect(self) -> Iterator[GaugeMetricFamily]:
        jobs = list(self.controller.store.jobs.values())
        connections = list(self.controller.store.connections.values())
        g = GaugeMetricFamily(
            "rollup_operator_jobs",
            "RollupJobs by the job state the server last reported (status.jobState) and desired state.",
            labels=["state", "desired"],
        )
        counts: Counter[tuple[str, str]] = Counter()
        for rt in jobs:
            desired = rt.spec.desired if rt.spec else "invalid"
            counts[(rt.status.get("jobState") or "unknown", desired)] += 1
        for (state, desired), n in sorted(counts.items()):
            g.add_metric([state, desired], n)
        yield g
        yield _conditions_family("rollup_operator_job_conditions", "RollupJobs", (e.status for e in jobs))
        yield _conditions_family("rollup_operator_connection_conditions", "ElasticsearchConnections", (e.status for e in connections))

    def describe(self) -> list[GaugeMetricFamily]:
        return []
