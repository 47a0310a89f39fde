"""Build a RollupJob's ``status`` from a decision, and tell whether it differs from what is stored.

Status is rebuilt from the world on every pass (observation + decision + progress), never
incrementally edited, and written only when the rebuilt status differs from the stored one.
"""

from __future__ import annotations

import datetime as dt
from typing import Any, Mapping

from rollup_operator.job import conditions as cond
from rollup_operator.job.decide import PROGRESSING, READY, STALLED, SUSPENDED, Progress, Verdict
from rollup_operator.migration.plan import status_migration
from rollup_operator.job.spec import JobSpec
from rollup_operator.job.observations import Failure, JobObserved, Observation

_STATS = (
    "pages_processed", "documents_processed", "rollups_indexed", "trigger_count",
    "index_time_in_ms", "index_total", "index_failures", "search_time_in_ms",
    "search_total", "search_failures", "processing_time_in_ms", "processing_total",
)


def camel(name: str) -> str:
    head, *rest = name.split("_")
    return head + "".join(p.capitalize() for p in rest)


def stats_to_status(stats: Mapping[str, Any]) -> dict:
    return {camel(k): int(stats[k]) for k in _STATS if isinstance(stats.get(k), (int, float))}


def now_iso(ts: float | None = None) -> str:
    t = dt.datetime.fromtimestamp(ts, dt.timezone.utc) if ts is not None else dt.datetime.now(dt.timezone.utc)
    return t.replace(microsecond=0).strftime("%Y-%m-%dT%H:%M:%SZ")


def verdict_conditions(v: Verdict, generation: int) -> list[dict]:
    ready = v.phase == READY or (v.phase == SUSPENDED and v.in_desired_state)
    return [
        cond.condition(cond.READY, ready, v.reason, v.message, generation),
        cond.condition(cond.RECONCILING, v.phase == PROGRESSING, v.reason, v.message if v.phase == PROGRESSING else "", generation),
        cond.condition(cond.STALLED, v.phase == STALLED, v.reason, v.message if v.phase == STALLED else "", generation),
    ]


def job_status(
    spec: JobSpec,
    verdict: Verdict,
    obs: Observation | None,
    progress: Progress,
    previous: Mapping[str, Any] | None,
    now: str,
) -> dict:
    previous = previous or {}
    if isinstance(obs, JobObserved) and obs.stats:
        stats = stats_to_status(obs.stats)
    elif isinstance(obs, Failure) or obs is None:
        stats = previous.get("stats")  # last known; the server could not be asked
    else:
        stats = None
    status = {
        "observedGeneration": spec.generation,
        "jobId": spec.job_id,
        "connection": spec.connection,
        "jobState": verdict.job_state,
        "conditions": cond.merge(previous.get("conditions"), verdict_conditions(verdict, spec.generation), now),
        "message": verdict.message,
        "stats": stats,
        "stopAttempts": progress.stop_attempts or None,
        "lastStopAttemptTime": now_iso(progress.last_stop_at) if progress.last_stop_at is not None else previous.get("lastStopAttemptTime"),
        "managed": True if (progress.created or previous.get("managed")) else None,
        "suspended": True if verdict.phase == SUSPENDED else None,
        "migration": _migration(spec, obs, previous),
    }
    return status


def _migration(spec: JobSpec, obs: Observation | None, previous: Mapping[str, Any]) -> dict | None:
    """status.migration (migration.py) from the observed job's config when the server has the job,
    else from spec.config (already Elasticsearch-shaped); when the server could not be asked and the
    spec has no config, the last known value stays."""
    if isinstance(obs, JobObserved) and obs.config:
        return status_migration(obs.config)
    if spec.config:
        return status_migration(spec.config)
    if isinstance(obs, Failure) or obs is None:
        return previous.get("migration")
    return None


def differs(stored: Mapping[str, Any] | None, wanted: Mapping[str, Any]) -> bool:
    """Whether writing ``wanted`` would change ``stored``. A key whose wanted value is None is
    wanted absent; conditions are compared whole."""
    stored = stored or {}
    for k, v in wanted.items():
        if v is None:
            if stored.get(k) is not None:
                return True
        elif stored.get(k) != v:
            return True
    return False


def applied(wanted: Mapping[str, Any]) -> dict[str, Any]:
    """The status object to apply (server-side apply of the whole status): ``wanted`` without the
    keys wanted absent. Fields the operator applied before and leaves out now are removed by the
    server, since the operator's field manager owns them."""
    return {k: v for k, v in wanted.items() if v is not None}


def invalid_status(generation: int, message: str, previous: Mapping[str, Any] | None, now: str) -> dict:
    """Status for a spec the operator cannot act on (what the CRD schema could not reject)."""
    previous = previous or {}
    v = Verdict(STALLED, "InvalidSpec", message, previous.get("jobState") or "unknown")
    return {
        **previous,  # the rest of the last status stays as it was (jobId, stats, ...)
        "observedGeneration": generation,
        "jobState": v.job_state,
        "conditions": cond.merge(previous.get("conditions"), verdict_conditions(v, generation), now),
        "message": message,
    }


# --- events: one per transition ---------------------------------------------------------------

_QUIET_REASONS = frozenset({"AddingFinalizer", "RemovingFinalizer"})
_WARNING_REASONS = frozenset({"ElasticsearchUnavailable", "TLSError", "DeletionBlocked", "FinalizerReleased", "DriftDetected",
                              "UnexpectedResponse"})
_EVENT_REASON = {"Stopping": "StopRequested", "Starting": "StartRequested"}


def transition_event(previous: Mapping[str, Any] | None, spec: JobSpec, verdict: Verdict, progress: Progress,
                     drift: bool = False) -> tuple[str, str, str] | None:
    """The Event (type, reason, message) that this pass's verdict warrants, or None.

    An Event is posted when the Ready reason changes (stop requested, stopped, an error...), and
    once when a stop first times out; never for a pass that changes nothing. ``drift`` (the
    decision's: decide.drifted) names the transition as drift: the server changed behind the
    operator's back. An outage is a transition to its failure reason, never drift.
    """
    from rollup_operator.job.observations import StopTimedOut

    previous = previous or {}
    ready = cond.get(previous.get("conditions"), cond.READY) or {}
    prev_reason = ready.get("reason")
    if drift:
        return ("Warning", "DriftDetected", f"the server reports rollup job [{spec.job_id}] as {verdict.job_state} but desiredState is {spec.desired}: {verdict.message}")
    if verdict.reason == prev_reason:
        if verdict.reason == "Stopping" and isinstance(progress.last_outcome, StopTimedOut) and progress.stop_timeouts == 1:
            return ("Normal", "StopTimedOut", verdict.message)
        return None
    if verdict.reason in _QUIET_REASONS:
        return None
    type_ = "Warning" if verdict.phase == STALLED or verdict.reason in _WARNING_REASONS else "Normal"
    return (type_, _EVENT_REASON.get(verdict.reason, verdict.reason), verdict.message)


# --- ElasticsearchConnection status --------------------------------------------------------------


def connection_status(
    generation: int,
    failure: Failure | None,
    version: str | None,
    deprecated: bool | None,
    usage_rule: bool | None,
    deprecation_warning: str | None,
    server_jobs: int | None,
    previous: Mapping[str, Any] | None,
    now: str,
) -> dict:
    previous = previous or {}
    if failure is None:
        what = f"Elasticsearch {version}" if version else "Elasticsearch (version unknown: GET / needs the monitor privilege)"
        v = Verdict(READY, "Connected", f"{what} is reachable; {server_jobs} rollup job(s) on the cluster", "")
    elif failure.transient:
        v = Verdict(PROGRESSING, failure.kind, failure.message, "")
    else:
        v = Verdict(STALLED, failure.kind, failure.message, "")
    return {
        "observedGeneration": generation,
        "conditions": cond.merge(previous.get("conditions"), verdict_conditions(v, generation), now),
        "reachable": failure is None or failure.kind not in ("ElasticsearchUnavailable", "TLSError"),
        "version": version or previous.get("version"),
        "rollupDeprecated": deprecated if deprecated is not None else previous.get("rollupDeprecated"),
        "newJobsRequireRollupUsage": usage_rule if usage_rule is not None else previous.get("newJobsRequireRollupUsage"),
        "deprecationWarning": deprecation_warning or previous.get("deprecationWarning"),
        "lastError": failure.message if failure else None,
    }
