"""RollupMigration's pure core: the phase decision (migration/phases.py), the verification's comparison
(migration/verify.py) and the status and Events built from a decision (migration/status.py). No I/O."""

from __future__ import annotations

from dataclasses import replace

import pytest

from rollup_operator.job.spec import FINALIZER as JOB_FINALIZER
from rollup_operator.migration import status as mstatus, verify
from rollup_operator.migration.phases import READY, RECONCILING, STALLED, WAITING, Observed, decide, effective_plan
from rollup_operator.migration.spec import FINALIZER, migration_spec

CONFIG = {
    "id": "sensor-5m", "index_pattern": "metrics-sensor*", "rollup_index": "sensor-rollup", "cron": "0 0 0 1 1 ?",
    "page_size": 1000,
    "groups": {"date_histogram": {"field": "@timestamp", "fixed_interval": "5m"}, "terms": {"fields": ["host", "sensor"]}},
    "metrics": [{"field": "temperature", "metrics": ["min", "max", "sum", "value_count", "avg"]},
                {"field": "requests_total", "metrics": ["min", "max", "sum", "value_count", "avg"]}],
}
CALENDAR = {**CONFIG, "groups": {"date_histogram": {"field": "@timestamp", "calendar_interval": "1h"}, "terms": {"fields": ["host"]}}}


def body(**spec):
    meta = {"namespace": "ns", "name": "m", "uid": "uid-1", "generation": spec.pop("generation", 1)}
    meta.update(spec.pop("meta", {}))
    return {"metadata": meta, "spec": {"jobRef": {"name": "sensor-5m"}, "targetDataStream": "metrics-sensor", **spec}}


def mspec(**spec):
    return migration_spec(body(**spec))


JOB = {"config": CONFIG, "state": "started"}


def provisioned(s, plan):
    tmpl, pol = plan["indexTemplate"], plan["ilmPolicy"]["policy"]
    return {"template": tmpl, "policy": pol, "dataStream": {"writeIndexPolicy": plan["resourceName"]}}


def at_provisioned(s, **kw):
    plan = effective_plan(CONFIG, s, "sensor-5m")
    return Observed(job=JOB, simulated={"ok": True}, provisioning=provisioned(s, plan), **kw), plan


# --- Planned -----------------------------------------------------------------------------------

def test_first_it_reads_the_job():
    assert decide(mspec(), Observed()).observe == "job"


def test_a_downsampleable_job_is_planned_and_waits_for_approval_before_any_write():
    d = decide(mspec(), Observed(job=JOB))
    assert (d.phase, d.state, d.reason) == ("Planned", WAITING, "AwaitingApproval")
    assert not d.actions and d.observe is None and "spec.approved" in d.awaiting
    assert d.plan["verdict"] == "downsampleable" and d.plan["dimensions"] == ["host", "sensor"]


def test_the_approve_annotation_is_an_approval():
    d = decide(mspec(meta={"annotations": {"rollup.esops.dev/approve": "true"}}), Observed(job=JOB))
    assert d.phase == "Approved" and d.observe == "simulate"


def test_a_calendar_interval_is_a_blocker_with_its_proposal_until_accepted():
    d = decide(mspec(approved=True), Observed(job={"config": CALENDAR, "state": "started"}))
    assert (d.phase, d.state, d.reason) == (None, STALLED, "Blocked")
    assert "CalendarInterval" in d.awaiting and "fixed_interval 1h" in d.message and not d.actions
    accepted = decide(mspec(approved=True, acceptBlockers=["CalendarInterval"]), Observed(job={"config": CALENDAR, "state": "started"}))
    assert accepted.phase == "Approved" and accepted.plan["fixedInterval"] == "1h"
    assert accepted.plan["ilmPolicy"]["policy"]["phases"]["warm"]["actions"]["downsample"] == {"fixed_interval": "1h"}


def test_a_target_the_job_does_not_read_is_refused():
    d = decide(mspec(targetDataStream="logs-other", approved=True), Observed(job=JOB))
    assert (d.state, d.reason) == (STALLED, "TargetNotInIndexPattern")


def test_a_missing_job_stalls():
    d = decide(mspec(approved=True), Observed(job={}))
    assert (d.state, d.reason) == (STALLED, "JobNotFound") and d.poll


def test_the_spec_choices_shape_the_requests():
    s = mspec(fixedInterval="10m", after="3d", metricTypes={"requests_total": "gauge"}, dimensions=["host"])
    plan = effective_plan(CONFIG, s, "sensor-5m")
    phases = plan["ilmPolicy"]["policy"]["phases"]
    assert phases["warm"] == {"min_age": "3d", "actions": {"downsample": {"fixed_interval": "10m"}}}
    props = plan["indexTemplate"]["template"]["mappings"]["properties"]
    assert props["requests_total"]["time_series_metric"] == "gauge" and props["host"]["time_series_dimension"] is True
    assert "sensor" not in props
    assert plan["indexTemplate"]["index_patterns"] == ["metrics-sensor"]
    meta = plan["indexTemplate"]["_meta"]
    assert meta["managed_by"] == "rollup-operator" and meta["migration"] == "ns/m" and meta["migration_uid"] == "uid-1"
    assert effective_plan(CONFIG, mspec(), "sensor-5m")["indexTemplate"]["_meta"]["spec_hash"] != meta["spec_hash"]


# --- Provisioned -------------------------------------------------------------------------------

def test_the_template_is_simulated_before_anything_is_written():
    s = mspec(approved=True)
    assert decide(s, Observed(job=JOB)).observe == "simulate"
    d = decide(s, Observed(job=JOB, simulated={"ok": False, "message": "index.mode is 'standard'"}))
    assert (d.state, d.reason, d.actions) == (STALLED, "TemplateRejected", ())


def test_cleanup_delete_adds_the_finalizer_before_the_first_write():
    d = decide(mspec(approved=True, cleanupPolicy="Delete"), Observed(job=JOB))
    assert d.actions == (("add_finalizer", None),)
    s = mspec(approved=True, cleanupPolicy="Delete", meta={"finalizers": [FINALIZER]})
    assert decide(s, Observed(job=JOB)).observe == "simulate"


def test_provisioning_puts_policy_then_template_then_creates_the_data_stream():
    s = mspec(approved=True)
    d = decide(s, Observed(job=JOB, simulated={"ok": True}, provisioning={"template": None, "policy": None, "dataStream": None}))
    assert [a for a, _ in d.actions] == ["put_policy", "put_template", "create_data_stream"]
    assert d.phase == "Approved"


def test_an_existing_data_stream_is_rolled_over_until_its_write_index_has_the_policy():
    s = mspec(approved=True)
    o, plan = at_provisioned(s)
    o = replace(o, provisioning={**o.provisioning, "dataStream": {"writeIndexPolicy": None}})
    assert [a for a, _ in decide(s, o).actions] == ["rollover"]


def test_provisioned_when_everything_is_current_and_then_coverage_is_read():
    s = mspec(approved=True)
    o, _ = at_provisioned(s)
    d = decide(s, o)
    assert d.phase == "Provisioned" and d.observe == "coverage" and not d.actions


def test_a_changed_choice_puts_the_bodies_again():
    s = mspec(approved=True)
    o, _ = at_provisioned(s)
    s2 = replace(s, after="5d")
    assert [a for a, _ in decide(s2, o).actions] == ["put_policy"]  # min_age is the policy's; the template is current
    s3 = replace(s, dimensions=("host",))
    assert [a for a, _ in decide(s3, o).actions] == ["put_template"]


def test_a_template_of_another_migration_is_a_conflict():
    s = mspec(approved=True)
    o, plan = at_provisioned(s)
    other = {**plan["indexTemplate"], "_meta": {**plan["indexTemplate"]["_meta"], "migration_uid": "x", "migration": "b/other"}}
    d = decide(s, replace(o, provisioning={**o.provisioning, "template": other}))
    assert (d.state, d.reason) == (STALLED, "Conflict") and "b/other" in d.message and not d.actions


# --- RunningSideBySide, Verified ----------------------------------------------------------------

def test_side_by_side_waits_for_ilm_then_for_the_rollup_job():
    s = mspec(approved=True)
    o, _ = at_provisioned(s)
    d = decide(s, replace(o, coverage={"rollup": (0, 10)}))
    assert (d.phase, d.state, d.poll) == ("Provisioned", RECONCILING, True) and "ILM to downsample" in d.awaiting
    d = decide(s, replace(o, coverage={"downsampled": (0, 10)}))
    assert "the rollup job" in d.awaiting


def test_an_overlap_is_verified_and_an_agreement_waits_for_the_cut_over_approval():
    s = mspec(approved=True)
    o, _ = at_provisioned(s, coverage={"overlap": (0, 600_000)})
    assert decide(s, o).observe == "verification"
    d = decide(s, replace(o, verification={"agree": True, "differences": []}))
    assert (d.phase, d.state, d.reason) == ("Verified", WAITING, "AwaitingCutOverApproval")


def test_differences_stall_before_verified_and_are_checked_again():
    s = mspec(approved=True, cutOver={"approved": True})
    o, _ = at_provisioned(s, coverage={"overlap": (0, 600_000)},
                          verification={"agree": False, "differenceCount": 3, "differences": [{"value": "doc_count"}]})
    d = decide(s, o)
    assert (d.phase, d.state, d.reason, d.poll) == ("RunningSideBySide", STALLED, "VerificationFailed", True)
    assert "3 differences" in d.message and not d.actions


# --- CutOver -----------------------------------------------------------------------------------

def verified(s, **kw):
    o, plan = at_provisioned(s, coverage={"overlap": (0, 1)}, verified={"agree": True, "differences": []}, **kw)
    return replace(o, frozen_plan=plan)


def test_cut_over_stops_through_the_rollupjob_and_waits_for_the_stop():
    s = mspec(approved=True, cutOver={"approved": True})
    o = verified(s)
    assert decide(s, o).observe == "rollupjob"
    o = replace(o, rollupjob={"spec": {"desiredState": "started"}})
    assert decide(s, o).actions == (("stop_rollupjob", "sensor-5m"),)
    d = decide(s, replace(o, rollupjob={"spec": {"desiredState": "stopped"}}))
    assert (d.reason, d.poll) == ("Stopping", True) and not d.actions
    d = decide(s, replace(o, job={**JOB, "state": "stopped"}, rollupjob={"spec": {"desiredState": "stopped"}}))
    assert (d.phase, d.state) == ("CutOver", READY) and "stopped (kept)" in d.message


def test_a_server_job_id_is_stopped_and_deleted_directly():
    s = migration_spec({"metadata": {"namespace": "ns", "name": "m", "uid": "u", "generation": 1},
                        "spec": {"jobId": "sensor-5m", "connectionRef": {"name": "es"}, "targetDataStream": "metrics-sensor",
                                 "approved": True, "cutOver": {"approved": True, "jobPolicy": "Delete",
                                                               "allowRemovingLastRollupJob": True}}})
    o = verified(s)
    assert decide(s, o).actions == (("stop_job", None),)
    o = replace(o, job={**JOB, "state": "stopped"})
    assert decide(s, o).actions == (("delete_job", None),)
    assert decide(s, replace(o, job={})).phase == "CutOver"


@pytest.mark.parametrize("version,jobs,stalled", [((8, 17), 1, True), ((9, 1), 1, True), ((8, 17), 2, False), ((8, 14), 1, False)])
def test_the_guardrail_keeps_the_last_rollup_job_on_8_15_and_later(version, jobs, stalled):
    s = mspec(approved=True, cutOver={"approved": True, "jobPolicy": "Delete"})
    o = replace(verified(s), version=version, rollup_jobs=jobs, rollupjob={"spec": {"desiredState": "started"}})
    d = decide(s, o)
    if stalled:
        assert (d.state, d.reason, d.actions) == (STALLED, "LastRollupJob", ())
        assert "allowRemovingLastRollupJob" in d.awaiting
    else:
        assert d.actions == (("stop_rollupjob", "sensor-5m"),)
    opted = replace(s, allow_last_job=True)
    assert decide(opted, replace(o, version=version, rollup_jobs=jobs)).reason != "LastRollupJob"


def test_delete_policy_waits_for_the_rollupjobs_finalizer_before_deleting_it():
    s = mspec(approved=True, cutOver={"approved": True, "jobPolicy": "Delete", "allowRemovingLastRollupJob": True})
    o = replace(verified(s), job={**JOB, "state": "stopped"})
    rj = {"metadata": {}, "spec": {"desiredState": "stopped"}}
    assert decide(s, replace(o, rollupjob=rj)).actions == (("rollupjob_deletion_policy", "sensor-5m"),)
    rj = {"metadata": {}, "spec": {"desiredState": "stopped", "deletionPolicy": "Delete"}}
    assert decide(s, replace(o, rollupjob=rj)).reason == "Deleting"
    rj["metadata"] = {"finalizers": [JOB_FINALIZER]}
    assert decide(s, replace(o, rollupjob=rj)).actions == (("delete_rollupjob", "sensor-5m"),)
    done = decide(s, replace(o, job={}, rollupjob={}))
    assert (done.phase, done.state) == ("CutOver", READY) and "deleted" in done.message


def test_without_the_cut_over_approval_the_job_keeps_running():
    s = mspec(approved=True)
    d = decide(s, verified(s))
    assert (d.phase, d.reason, d.actions) == ("Verified", "AwaitingCutOverApproval", ())


# --- verify ------------------------------------------------------------------------------------

def test_questions_compare_gauges_with_the_jobs_own_metrics_and_skip_counters():
    plan = effective_plan(CONFIG, mspec(), "sensor-5m")
    dims, metrics = verify.questions(plan, CONFIG)
    assert dims == ["host", "sensor"]
    assert sorted(metrics) == sorted(("temperature", k) for k in ("min", "max", "sum", "value_count", "avg"))


def answer(values):
    return {"aggregations": {"t": {"buckets": [
        {"key": 0, "doc_count": 3, "dim:host": {"buckets": [{"key": "a", "doc_count": 3, **{k: {"value": v} for k, v in values.items()}}]}},
        {"key": 300000, "doc_count": 0},
    ]}}}


def test_compare_agrees_within_tolerance_and_lists_differences_beyond_it():
    a = verify.flatten(answer({"t.sum": 1000.0, "t.max": 5.0}), ["host"])
    assert a == {(0, "a"): {"doc_count": 3.0, "t.sum": 1000.0, "t.max": 5.0}}
    near = verify.flatten(answer({"t.sum": 1000.5, "t.max": 5.0}), ["host"])
    assert verify.compare(a, near, 0.001, 20)["agree"] is True
    far = verify.flatten(answer({"t.sum": 1002.0, "t.max": 5.0}), ["host"])
    out = verify.compare(a, far, 0.001, 20)
    assert out["agree"] is False and out["differenceCount"] == 1
    assert out["differences"] == [{"interval": "0", "dimensions": ["a"], "value": "t.sum", "rollup": 1000.0, "downsampled": 1002.0}]


def test_a_bucket_on_one_side_only_is_a_difference_and_the_list_is_bounded():
    a = {(i,): {"doc_count": 1.0} for i in range(5)}
    out = verify.compare(a, {}, 0.001, 2)
    assert out["differenceCount"] == 5 and len(out["differences"]) == 2
    assert out["differences"][0]["note"] == "only in the rollup index"


def test_coverage_overlap_is_aligned_to_the_plan_interval():
    cov = verify.coverage([0, 300_000, 600_000], 300_000, 150_000, 900_000, 300_000)
    assert cov["rollup"] == (0, 900_000) and cov["overlap"] == (300_000, 900_000)
    assert "overlap" not in verify.coverage([0], 300_000, None, None, 300_000)


# --- status and events ---------------------------------------------------------------------------

def test_status_has_phases_with_timestamps_conditions_and_one_event_per_new_phase():
    s = mspec(approved=True)
    o, _ = at_provisioned(s)
    d = decide(s, o)
    st = mstatus.build(1, d, {}, "T1")
    assert [p["name"] for p in st["phases"]] == ["Planned", "Approved", "Provisioned", "RunningSideBySide"]
    assert st["phases"][-1]["status"] == "False" and st["phases"][0]["completedAt"] == "T1"
    conds = {c["type"]: c for c in st["conditions"]}
    assert conds["Ready"]["status"] == "False" and conds["Reconciling"]["status"] == "True"
    assert conds["Stalled"]["status"] == "False" and all(c["observedGeneration"] == 1 for c in conds.values())
    assert [e[1] for e in mstatus.transitions({}, st, d)] == ["Planned", "Approved", "Provisioned"]
    again = mstatus.build(1, d, st, "T2")
    assert again == st and mstatus.transitions(st, again, d) == []  # nothing changed: no write, no Event


def test_a_stall_is_one_warning_and_ready_true_only_after_the_cut_over():
    s = mspec(approved=True, cutOver={"approved": True, "jobPolicy": "Delete"})
    o = replace(verified(s), version=(8, 17), rollup_jobs=1, rollupjob={"spec": {}})
    d = decide(s, o)
    st = mstatus.build(2, d, {}, "T")
    assert {c["type"]: c["status"] for c in st["conditions"]}["Stalled"] == "True"
    assert ("Warning", "LastRollupJob", d.message) in mstatus.transitions({}, st, d)
    assert mstatus.transitions(st, mstatus.build(2, d, st, "T3"), d) == []


def test_once_provisioned_at_this_generation_the_provisioning_is_not_read_again():
    s = mspec(approved=True)
    plan = effective_plan(CONFIG, s, "sensor-5m")
    o = Observed(job=JOB, frozen_plan=plan, trust_provisioned=True)
    d = decide(s, o)
    assert d.phase == "Provisioned" and d.observe == "coverage"
    assert decide(s, replace(o, trust_provisioned=False)).observe == "provisioning"  # a new generation: read and check again


def test_a_rollupjob_deleted_before_the_cut_over_is_stopped_on_the_server_directly():
    s = mspec(approved=True, cutOver={"approved": True})
    assert decide(s, replace(verified(s), rollupjob={})).actions == (("stop_job", None),)


def test_the_provisioned_phase_lists_what_it_created():
    s = mspec(approved=True)
    o, _ = at_provisioned(s)
    created = [{"kind": "IlmPolicy", "name": "sensor-5m-downsampling"}]
    st = mstatus.build(1, decide(s, o), {}, "T", created=created)
    assert next(p for p in st["phases"] if p["name"] == "Provisioned")["created"] == created and st["created"] == created
