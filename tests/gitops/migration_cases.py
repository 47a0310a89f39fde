"""RollupMigration objects whose status the operator's own code built (migration/phases.decide ->
migration/status.build), for the Argo CD health cases (cases.py) and the kstatus comparison."""

from __future__ import annotations

import copy
from dataclasses import replace
from typing import Any, Callable

from rollup_operator.migration import status as mstatus
from rollup_operator.migration.phases import Observed, decide, effective_plan
from rollup_operator.migration.spec import migration_spec

NOW = "2026-01-01T00:00:00Z"
CONFIG = {
    "id": "sensor-5m", "index_pattern": "metrics-sensor*", "rollup_index": "sensor-rollup", "cron": "0 0 * * * ?",
    "groups": {"date_histogram": {"field": "@timestamp", "fixed_interval": "5m"}, "terms": {"fields": ["host"]}},
    "metrics": [{"field": "temperature", "metrics": ["min", "max", "sum", "value_count"]}],
}
CALENDAR = {**CONFIG, "groups": {"date_histogram": {"field": "@timestamp", "calendar_interval": "1h"}}}


def migration_body(generation: int = 2, **spec: Any) -> dict:
    return {"apiVersion": "rollup.esops.dev/v1alpha1", "kind": "RollupMigration",
            "metadata": {"name": "sensor-5m", "namespace": "ns", "uid": "u-9", "generation": generation},
            "spec": {"jobRef": {"name": "sensor-5m"}, "targetDataStream": "metrics-sensor", **spec}}


def with_status(body: dict, observed: Callable[[Any, dict], Observed]) -> dict:
    s = migration_spec(body)
    plan = effective_plan(CONFIG, s, "sensor-5m")
    d = decide(s, observed(s, plan))
    return {**body, "status": mstatus.build(s.generation, d, {}, NOW)}


def _current(s, plan, **kw) -> Observed:
    prov = {"template": plan["indexTemplate"], "policy": plan["ilmPolicy"]["policy"],
            "dataStream": {"writeIndexPolicy": plan["resourceName"]}}
    return Observed(job={"config": CONFIG, "state": "started"}, simulated={"ok": True}, provisioning=prov, **kw)


def _verified(s, plan, **kw) -> Observed:
    return replace(_current(s, plan, coverage={"overlap": (0, 1)}, verified={"agree": True}, **kw), frozen_plan=plan)


def awaiting_approval() -> dict:
    return with_status(migration_body(), lambda s, p: Observed(job={"config": CONFIG, "state": "started"}))


def blocked() -> dict:
    return with_status(migration_body(approved=True), lambda s, p: Observed(job={"config": CALENDAR, "state": "started"}))


def side_by_side() -> dict:
    return with_status(migration_body(approved=True), lambda s, p: _current(s, p, coverage={"rollup": (0, 1)}))


def verification_failed() -> dict:
    return with_status(migration_body(approved=True), lambda s, p: _current(
        s, p, coverage={"overlap": (0, 1)}, verification={"agree": False, "differenceCount": 1, "differences": [{"value": "doc_count"}]}))


def awaiting_cut_over() -> dict:
    return with_status(migration_body(approved=True), _verified)


def last_rollup_job() -> dict:
    body = migration_body(approved=True, cutOver={"approved": True, "jobPolicy": "Delete"})
    return with_status(body, lambda s, p: _verified(s, p, version=(8, 17), rollup_jobs=1, rollupjob={"spec": {}}))


def cut_over() -> dict:
    body = migration_body(approved=True, cutOver={"approved": True})
    return with_status(body, lambda s, p: replace(_verified(s, p), job={"config": CONFIG, "state": "stopped"},
                                                  rollupjob={"spec": {"desiredState": "stopped"}}))


def generation_behind() -> dict:
    obj = copy.deepcopy(cut_over())
    obj["metadata"]["generation"] = 3
    return obj


# (case name, builder, Argo CD health, message: a condition type or a literal, kstatus status)
CASES: list[tuple[str, Callable[[], dict], str, str, str]] = [
    ("progressing_noStatus", migration_body, "Progressing", "Waiting for the operator to report status", "Current"),
    ("suspended_awaitingApproval", awaiting_approval, "Suspended", "cond:Ready", "InProgress"),
    ("degraded_blockedAtPlanned", blocked, "Degraded", "cond:Stalled", "Failed"),
    ("progressing_sideBySide", side_by_side, "Progressing", "cond:Reconciling", "InProgress"),
    ("degraded_verificationFailed", verification_failed, "Degraded", "cond:Stalled", "Failed"),
    ("suspended_awaitingCutOver", awaiting_cut_over, "Suspended", "cond:Ready", "InProgress"),
    ("degraded_lastRollupJob", last_rollup_job, "Degraded", "cond:Stalled", "Failed"),
    ("healthy_cutOver", cut_over, "Healthy", "cond:Ready", "Current"),
    ("progressing_generationBehind", generation_behind, "Progressing", "Waiting for the operator to observe generation 3", "InProgress"),
]
