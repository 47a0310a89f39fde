"""What a RollupMigration does next: spec + what was observed -> the phase reached, and what to
observe, do or await next. Pure, no I/O (tests/unit/test_migration_phases.py).

The runner (runner.py) calls :func:`decide` with what it has observed so far; the answer asks for
one more observation (``observe``), for actions (``actions``, after which the runner observes
again), or is final for this pass (``awaiting`` says what for, ``state`` how kstatus sees it).
Phases, in order: Planned, Approved, Provisioned, RunningSideBySide, Verified, CutOver.
"""

from __future__ import annotations

import fnmatch
from dataclasses import dataclass, field, replace
from typing import Any, Mapping

from rollup_operator.job.spec import FINALIZER as JOB_FINALIZER
from rollup_operator.migration import plan as planner
from rollup_operator.migration.spec import FINALIZER, MigrationSpec

PHASES = ("Planned", "Approved", "Provisioned", "RunningSideBySide", "Verified", "CutOver")
MANAGED_BY = "rollup-operator"
# kstatus: what the status says about progress
READY, WAITING, RECONCILING, STALLED = "Ready", "Waiting", "Reconciling", "Stalled"


@dataclass(frozen=True)
class Observed:
    """What the runner knows this pass; None: not observed yet."""

    job: Mapping[str, Any] | None = None  # {"config": ..., "state": ...}, {} if the job does not exist
    version: tuple[int, int] | None = None
    frozen_plan: Mapping[str, Any] | None = None  # status.plan once Provisioned
    verified: Mapping[str, Any] | None = None  # status.verification once it agreed
    simulated: Mapping[str, Any] | None = None  # {"ok": bool, "message": str}
    provisioning: Mapping[str, Any] | None = None  # {"template": body|None, "policy": body|None, "dataStream": {...}|None}
    coverage: Mapping[str, Any] | None = None
    verification: Mapping[str, Any] | None = None
    rollup_jobs: int | None = None  # jobs on the cluster (GET _rollup/job/_all)
    rollupjob: Mapping[str, Any] | None = None  # the RollupJob (jobRef), {} if gone
    #: provisioned at this generation already (status): not read again on every poll
    trust_provisioned: bool = False


@dataclass(frozen=True)
class Decision:
    phase: str | None  # the last phase completed (None: not even Planned)
    state: str = RECONCILING
    reason: str = ""
    message: str = ""
    awaiting: str | None = None
    observe: str | None = None
    actions: tuple[tuple[str, Any], ...] = ()
    plan: Mapping[str, Any] | None = None
    poll: bool = False  # look again after the poll period (ILM, the rollup job, a stop)
    details: Mapping[str, Any] = field(default_factory=dict)


def owner_meta(spec: MigrationSpec) -> dict[str, str]:
    return {"managed_by": MANAGED_BY, "migration": spec.ref, "migration_uid": spec.uid}


def body_hash(body: Mapping[str, Any]) -> str:
    """A digest of a request body (without its _meta), kept in its _meta: the server's answer
    normalizes settings and adds defaults, so the digest, not the answer, says whether it is current."""
    import hashlib
    import json

    def strip(x: Any) -> Any:
        return {k: strip(v) for k, v in x.items() if k != "_meta"} if isinstance(x, Mapping) else x
    return hashlib.sha256(json.dumps(strip(body), sort_keys=True).encode()).hexdigest()[:16]


def effective_plan(config: Mapping[str, Any], spec: MigrationSpec, job_id: str) -> dict[str, Any]:
    """migration-plan's plan of the job, then its requests rebuilt with the spec's choices."""
    base = planner.plan_job(config, None, job_id)
    unaccepted = [b for b in base["blockers"] if b["reason"] not in spec.accept]
    if unaccepted or not base.get("fixedInterval"):
        return {**base, "unaccepted": unaccepted}
    cfg = {**config, "groups": dict(config.get("groups") or {})}
    dh = {k: v for k, v in (cfg["groups"].get("date_histogram") or {}).items() if k != "calendar_interval"}
    dh["fixed_interval"] = spec.fixed_interval or base["fixedInterval"]
    cfg["groups"]["date_histogram"] = dh
    if spec.dimensions:
        cfg["groups"]["terms"] = {"fields": list(spec.dimensions)}
    chosen = planner.plan_job(cfg, planner.SourceFacts(metric_types=dict(spec.metric_types)), job_id)
    after = spec.after or chosen["after"]
    name = planner.resource_name(job_id)
    template = dict(chosen["requests"]["indexTemplate"]["body"])
    template["index_patterns"] = [spec.target]
    template["_meta"] = {**template.get("_meta", {}), **owner_meta(spec), "spec_hash": body_hash(template)}
    policy = {"policy": dict(chosen["requests"]["ilmPolicy"]["body"]["policy"])}
    phases = dict(policy["policy"]["phases"])
    phases["warm"] = {**phases["warm"], "min_age": after}
    policy["policy"] = {**policy["policy"], "phases": phases}
    policy["policy"]["_meta"] = {**policy["policy"].get("_meta", {}), **owner_meta(spec), "spec_hash": body_hash(policy["policy"])}
    return {**chosen, "blockers": base["blockers"], "accepted": sorted(b["reason"] for b in base["blockers"]),
            "unaccepted": [], "after": after, "resourceName": name, "targetDataStream": spec.target,
            "indexTemplate": template, "ilmPolicy": policy, "summary": base["summary"]}


def _matched(index_pattern: str, target: str) -> bool:
    return any(fnmatch.fnmatchcase(target, p.strip()) for p in index_pattern.split(",") if p.strip())


def _owned_by_other(body: Mapping[str, Any] | None, spec: MigrationSpec) -> bool:
    meta = (body or {}).get("_meta") or {}
    return body is not None and meta.get("migration_uid") not in (None, spec.uid)


def _current(want: Mapping[str, Any], have: Mapping[str, Any] | None) -> bool:
    return have is not None and ((have.get("_meta") or {}).get("spec_hash")) == want["_meta"]["spec_hash"]


def decide(spec: MigrationSpec, o: Observed) -> Decision:
    if o.job is None:
        return Decision(None, observe="job")
    plan = o.frozen_plan
    # A job deleted by this migration's own cut-over is gone on purpose (_cut_over); any other absence stalls.
    if not o.job and not (o.verified and plan and spec.cutover_approved and spec.job_policy == "Delete"):
        return Decision(None, STALLED, "JobNotFound", "the rollup job does not exist on the server", plan=plan,
                        awaiting="the rollup job", poll=True)
    if plan is None:
        plan = effective_plan(o.job["config"], spec, str(o.job["config"].get("id") or spec.job_id or spec.job_ref))
    if plan.get("unaccepted"):
        b = plan["unaccepted"]
        msg = "; ".join(f"{x['reason']}: {x['message']}" + (f" (proposal: {x['proposal']})" if x.get("proposal") else "")
                        for x in b)
        return Decision(None, STALLED, "Blocked", f"blocked by {msg}. Accept a blocker's proposal with spec.acceptBlockers",
                        awaiting="spec.acceptBlockers: " + ", ".join(x["reason"] for x in b), plan=plan)
    index_pattern = str(plan.get("indexPattern") or "")
    if not _matched(index_pattern, spec.target):
        return Decision(None, STALLED, "TargetNotInIndexPattern",
                        f"the job's index_pattern {index_pattern} does not match the target data stream {spec.target}: "
                        "the rollup job would not see the data stream's documents side by side", plan=plan)
    d = Decision("Planned", plan=plan)
    if not spec.approved:
        return replace(d, state=WAITING, reason="AwaitingApproval", awaiting="spec.approved: true (review status.plan)",
                       message="planned: nothing is written to the server before spec.approved is true")
    d = replace(d, phase="Approved")
    if o.frozen_plan is None:  # not provisioned yet (the plan freezes once provisioned)
        if spec.cleanup == "Delete" and FINALIZER not in spec.finalizers:
            return replace(d, actions=(("add_finalizer", None),))
        if o.simulated is None:
            return replace(d, observe="simulate")
        if not o.simulated.get("ok"):
            return replace(d, state=STALLED, reason="TemplateRejected", message=str(o.simulated.get("message")), poll=True)
    if o.provisioning is None and not o.trust_provisioned:
        return replace(d, observe="provisioning")
    p = o.provisioning if o.provisioning is not None else {"template": plan["indexTemplate"], "policy": plan["ilmPolicy"]["policy"],
                                                           "dataStream": {"writeIndexPolicy": plan["resourceName"]}}
    for kind, key in (("index template", "template"), ("ILM policy", "policy")):
        if _owned_by_other(p.get(key), spec):
            who = ((p.get(key) or {}).get("_meta") or {}).get("migration")
            return replace(d, state=STALLED, reason="Conflict", poll=True,
                           message=f"the {kind} {plan['resourceName']} belongs to another migration ({who})")
    actions: list[tuple[str, Any]] = []
    if not _current(plan["ilmPolicy"]["policy"], p.get("policy")):
        actions.append(("put_policy", plan["ilmPolicy"]))
    if not _current(plan["indexTemplate"], p.get("template")):
        actions.append(("put_template", plan["indexTemplate"]))
    ds = p.get("dataStream")
    if ds is None:
        actions.append(("create_data_stream", spec.target))
    elif ds.get("writeIndexPolicy") != plan["resourceName"]:
        actions.append(("rollover", spec.target))
    if actions:
        return replace(d, actions=tuple(actions))
    d = replace(d, phase="Provisioned")
    if o.coverage is None:
        return replace(d, observe="coverage")
    cov = o.coverage
    if not cov.get("overlap"):
        waiting = ("ILM to downsample a backing index of " + spec.target + f" ({plan['after']} after its rollover)"
                   if not cov.get("downsampled") else "the rollup job to roll up an interval the downsampled indices cover")
        return replace(d, awaiting=waiting, poll=True, message="running side by side: no overlapping interval yet",
                       reason="RunningSideBySide")
    d = replace(d, phase="RunningSideBySide")
    verification = o.verified
    if verification is None:
        if o.verification is None:
            return replace(d, observe="verification")
        verification = o.verification
        if verification.get("differences"):
            n = verification.get("differenceCount", len(verification["differences"]))
            return replace(d, state=STALLED, reason="VerificationFailed", poll=True,
                           message=f"{n} differences beyond tolerance {spec.tolerance} between _rollup_search and the "
                                   "downsampled indices (status.verification.differences)",
                           awaiting="the differences to be explained or resolved (verification is repeated)")
    d = replace(d, phase="Verified")
    if not spec.cutover_approved:
        return replace(d, state=WAITING, reason="AwaitingCutOverApproval", awaiting="spec.cutOver.approved: true",
                       message="verified: the rollup job keeps running until spec.cutOver.approved is true")
    return _cut_over(spec, o, d)


def _cut_over(spec: MigrationSpec, o: Observed, d: Decision) -> Decision:
    job = o.job or {}
    gone = not job
    if spec.job_policy == "Delete" and not gone and not spec.allow_last_job:
        if o.version is None:
            return replace(d, observe="version")
        if o.version >= (8, 15):
            if o.rollup_jobs is None:
                return replace(d, observe="rollup_jobs")
            if o.rollup_jobs <= 1:
                return replace(d, state=STALLED, reason="LastRollupJob", awaiting="spec.cutOver.allowRemovingLastRollupJob: true",
                               message="the job is the cluster's last rollup job: on 8.15+ a cluster with no rollup job and no "
                                       "rollup index refuses new rollup jobs; deleting it needs "
                                       "spec.cutOver.allowRemovingLastRollupJob (the job is kept running)")
    if spec.job_ref and o.rollupjob is None:
        return replace(d, observe="rollupjob")
    if not gone and job.get("state") not in ("stopped",):
        desired = ((o.rollupjob or {}).get("spec") or {}).get("desiredState")
        if spec.job_ref and desired != "stopped" and o.rollupjob:
            return replace(d, actions=(("stop_rollupjob", spec.job_ref),))
        if not spec.job_ref or not o.rollupjob:  # no RollupJob (spec.jobId, or it was deleted): stop it directly
            return replace(d, actions=(("stop_job", None),))
        return replace(d, awaiting="the rollup job to stop", poll=True, message="cutting over: stopping the rollup job",
                       reason="Stopping")
    if spec.job_policy == "Delete" and not gone:
        rj = o.rollupjob or {}
        if spec.job_ref and rj and not (rj.get("metadata") or {}).get("deletionTimestamp"):
            if (rj.get("spec") or {}).get("deletionPolicy") != "Delete":
                return replace(d, actions=(("rollupjob_deletion_policy", spec.job_ref),))
            if JOB_FINALIZER not in ((rj.get("metadata") or {}).get("finalizers") or ()):
                return replace(d, awaiting="the RollupJob's cleanup finalizer (deletionPolicy: Delete)", poll=True,
                               reason="Deleting", message="cutting over: the RollupJob takes deletionPolicy Delete")
            return replace(d, actions=(("delete_rollupjob", spec.job_ref),))
        if not rj:  # no RollupJob (spec.jobId, or it went without deleting the server job): delete it directly
            return replace(d, actions=(("delete_job", None),))
        return replace(d, awaiting="the rollup job to be deleted", poll=True, reason="Deleting",
                       message="cutting over: deleting the rollup job")
    kept = "deleted" if spec.job_policy == "Delete" else "stopped (kept)"
    return replace(d, phase="CutOver", state=READY, reason="CutOver",
                   message=f"cut over to {spec.target}: the rollup job is {kept}; the rollup index stays queryable")
