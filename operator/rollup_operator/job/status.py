"""Build a RollupJob's ``status`` from a decision, and tell whether it differs from what is stored.

Status is rebuilt from the world on every pass (observation + decision + progress), never
incrementally edited, and written only when the rebuilt status differs from the stored one.
"""

from __future__ import annotations

from typing import Any, Iterable, Mapping, NamedTuple

from rollup_operator.timefmt import rfc3339
from rollup_operator.job.decide import PROGRESSING, READY, STALLED, SUSPENDED, Decision, Progress, Verdict
from rollup_operator.job.ownership import DUPLICATE, resolved_event
from rollup_operator.migration.plan import status_migration
from rollup_operator.job.spec import JobSpec
from rollup_operator.job.observations import STAT_FIELDS, Failure, JobObserved, Observation



# --- conditions (metav1.Condition): Ready, Reconciling, Stalled ---------------------------------
# ``lastTransitionTime`` moves only when a condition's ``status`` changes, as the API conventions
# ask; reason, message and observedGeneration are updated in place.

READY_CONDITION, RECONCILING_CONDITION, STALLED_CONDITION = "Ready", "Reconciling", "Stalled"
CONDITION_ORDER = (READY_CONDITION, RECONCILING_CONDITION, STALLED_CONDITION)


def condition(type_: str, status: bool, reason: str, message: str, generation: int) -> dict[str, Any]:
    return {
        "type": type_,
        "status": "True" if status else "False",
        "reason": reason,
        "message": message,
        "observedGeneration": generation,
    }


def merge_conditions(previous: Iterable[Mapping[str, Any]] | None, wanted: Iterable[dict[str, Any]], now: str) -> list[dict[str, Any]]:
    """The condition list to write: ``wanted`` with transition times carried over from ``previous``."""
    prev = {c.get("type"): c for c in previous or ()}
    out = []
    for c in wanted:
        old = prev.get(c["type"])
        if old is not None and old.get("status") == c["status"] and old.get("lastTransitionTime"):
            ltt = old["lastTransitionTime"]
        else:
            ltt = now
        out.append({**c, "lastTransitionTime": ltt})
    return out


def get_condition(conditions: Iterable[Mapping[str, Any]] | None, type_: str) -> Mapping[str, Any] | None:
    for c in conditions or ():
        if c.get("type") == type_:
            return c
    return None


def ready_reason(status: Mapping[str, Any] | None) -> str | None:
    """The Ready condition's reason in a stored status (None: no Ready condition yet)."""
    return (get_condition((status or {}).get("conditions"), READY_CONDITION) or {}).get("reason")


def camel(name: str) -> str:
    head, *rest = name.split("_")
    return head + "".join(p.capitalize() for p in rest)


def stats_to_status(stats: Mapping[str, Any]) -> dict[str, Any]:
    return {camel(k): int(stats[k]) for k in STAT_FIELDS if isinstance(stats.get(k), (int, float))}


def verdict_conditions(v: Verdict, generation: int) -> list[dict[str, Any]]:
    ready = v.phase == READY or (v.phase == SUSPENDED and v.in_desired_state)
    return [
        condition(READY_CONDITION, ready, v.reason, v.message, generation),
        condition(RECONCILING_CONDITION, v.phase == PROGRESSING, v.reason, v.message if v.phase == PROGRESSING else "", generation),
        condition(STALLED_CONDITION, v.phase == STALLED, v.reason, v.message if v.phase == STALLED else "", generation),
    ]


def job_status(
    spec: JobSpec,
    verdict: Verdict,
    obs: Observation | None,
    progress: Progress,
    previous: Mapping[str, Any] | None,
    now: str,
) -> dict[str, Any]:
    previous = previous or {}
    stats: dict[str, Any] | None
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
        "conditions": merge_conditions(previous.get("conditions"), verdict_conditions(verdict, spec.generation), now),
        "message": verdict.message,
        "stats": stats,
        "stopAttempts": progress.stop_attempts or None,
        "lastStopAttemptTime": rfc3339(progress.last_stop_at) if progress.last_stop_at is not None else previous.get("lastStopAttemptTime"),
        "managed": True if (progress.created or previous.get("managed")) else None,
        "suspended": True if verdict.phase == SUSPENDED else None,
        "migration": _migration(spec, obs, previous),
    }
    return status


CONNECTING = "Connecting"


def awaits_first_answer(previous: Mapping[str, Any] | None, generation: int) -> bool:
    """Whether a status says nothing yet of this generation (or only that it is connecting): then
    a server that does not answer is worth a ``Connecting`` status while the request is pending."""
    return (previous or {}).get("observedGeneration") != generation or ready_reason(previous) in (None, CONNECTING)


def connecting_status(spec: JobSpec, awaited: str, progress: Progress, previous: Mapping[str, Any] | None, now: str) -> dict[str, Any]:
    """A job's status while its first look at the server of this generation is not answered."""
    previous = previous or {}
    message = f"waiting for ElasticsearchConnection {spec.namespace}/{spec.connection}: {awaited}"
    v = Verdict(PROGRESSING, CONNECTING, message, previous.get("jobState") or "unknown")
    return job_status(spec, v, None, progress, previous, now)


def _migration(spec: JobSpec, obs: Observation | None, previous: Mapping[str, Any]) -> dict[str, Any] | None:
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


def invalid_status(generation: int, message: str, previous: Mapping[str, Any] | None, now: str) -> dict[str, Any]:
    """Status for a spec the operator cannot act on (what the CRD schema could not reject)."""
    previous = previous or {}
    v = Verdict(STALLED, "InvalidSpec", message, previous.get("jobState") or "unknown")
    return {
        **previous,  # the rest of the last status stays as it was (jobId, stats, ...)
        "observedGeneration": generation,
        "jobState": v.job_state,
        "conditions": merge_conditions(previous.get("conditions"), verdict_conditions(v, generation), now),
        "message": message,
    }


# --- events: one per transition ---------------------------------------------------------------

_QUIET_REASONS = frozenset({"AddingFinalizer", "RemovingFinalizer", CONNECTING})
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

    prev_reason = ready_reason(previous)
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


Event = tuple[str, str, str]  # (type, reason, message)


class Publication(NamedTuple):
    """What a pass publishes (status_writer.py), in order: ``resolved``, the Event of a duplicate
    that has just become the owner (ownership.RESOLVED), if it is one; then the status rebuilt from
    the decision, with the Event its transition warrants."""

    resolved: Event | None
    status: dict[str, Any]
    event: Event | None


def publication(spec: JobSpec, d: Decision, obs: Observation, progress: Progress, previous: Mapping[str, Any] | None,
                now: str, *, acting_owner: bool) -> Publication:
    """The pass's publication from its decision: job_status and transition_event of the same stored
    status ``previous``; ``acting_owner``: the job acts as the owner of its server job (it is no
    duplicate), so a ``previous`` that says DuplicateJob means it has just taken over."""
    took_over = acting_owner and ready_reason(previous) == DUPLICATE
    return Publication(resolved_event(spec) if took_over else None, job_status(spec, d.verdict, obs, progress, previous, now),
                       transition_event(previous, spec, d.verdict, progress, d.drift))


# --- ElasticsearchConnection status --------------------------------------------------------------


def connection_connecting_status(generation: int, awaited: str, previous: Mapping[str, Any] | None, now: str) -> dict[str, Any]:
    """A connection's status while its server has not answered the first request of this generation."""
    previous = previous or {}
    v = Verdict(PROGRESSING, CONNECTING, f"waiting for the server: {awaited}", "")
    return {**previous, "observedGeneration": generation,
            "conditions": merge_conditions(previous.get("conditions"), verdict_conditions(v, generation), now)}


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
    engine: str | None = None,
) -> dict[str, Any]:
    previous = previous or {}
    if failure is None:
        name = "OpenSearch" if engine == "opensearch" else "Elasticsearch"
        what = f"{name} {version}" if version else f"{name} (version unknown: GET / needs the monitor privilege)"
        v = Verdict(READY, "Connected", f"{what} is reachable; {server_jobs} rollup job(s) on the cluster", "")
    elif failure.transient:
        v = Verdict(PROGRESSING, failure.kind, failure.message, "")
    else:
        v = Verdict(STALLED, failure.kind, failure.message, "")
    return {
        "observedGeneration": generation,
        "conditions": merge_conditions(previous.get("conditions"), verdict_conditions(v, generation), now),
        "engine": engine or previous.get("engine"),
        "reachable": failure is None or failure.kind not in ("ElasticsearchUnavailable", "TLSError"),
        "version": version or previous.get("version"),
        "rollupDeprecated": deprecated if deprecated is not None else previous.get("rollupDeprecated"),
        "newJobsRequireRollupUsage": usage_rule if usage_rule is not None else previous.get("newJobsRequireRollupUsage"),
        "deprecationWarning": deprecation_warning or previous.get("deprecationWarning"),
        "lastError": failure.message if failure else None,
    }
