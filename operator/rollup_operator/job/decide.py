"""The pure decision: desired spec + what we know of the server -> next action + verdict.

Nothing here does I/O or reads a clock; time is passed in. Every rule in docs/reconciliation.md's
"How a RollupJob is reconciled" table is one branch below, and ``tests/unit/test_decide.py``
has one row per rule.

A pass of the reconciler is::

    observation = what the connection last saw (or what the previous action told us)
    decision    = decide(spec, observation, progress)
    -> status is written from decision.verdict, decision.action is performed,
    -> progress = advance(progress, decision.action, outcome); the outcome becomes the
       next observation where it says enough (see ``observation_after``).

Writing ``Progress`` after a pass (``advance``, ``settle``, ``observation_after``...) is the
pure bookkeeping in ``bookkeeping.py``; this module only reads it.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

from rollup_operator.job import retry
from rollup_operator.job.spec import JobSpec, RELEASE_ANNOTATION
from rollup_operator.job.observations import (
    ABORTING,
    ABSENT,
    FAILED,
    FINISHED,
    INDEXING,
    RUNNING_STATES,
    STARTED,
    STOPPED,
    STOPPING,
    UNKNOWN,
    Failure,
    JobAbsent,
    JobObserved,
    Observation,
    Outcome,
    Refused,
    StopTimedOut,
)
from rollup_operator.job.config import config_differences, spec_field

# Phases map onto the three conditions (see status.py):
#   READY       Ready=True                      Reconciling=False Stalled=False
#   PROGRESSING Ready=False                     Reconciling=True  Stalled=False
#   STALLED     Ready=False                     Reconciling=False Stalled=True
#   SUSPENDED   Ready=(server state == desired) Reconciling=False Stalled=False
READY, PROGRESSING, STALLED, SUSPENDED = "Ready", "Progressing", "Stalled", "Suspended"


@dataclass(frozen=True)
class Action:
    kind: str  # stop | start | create | delete | wait | add_finalizer | remove_finalizer
    # For "wait": leave this state (poll the connection) for at most ``seconds``.
    state: str | None = None
    seconds: float = 0.0

    def __str__(self) -> str:  # for logs
        return self.kind if self.kind != "wait" else f"wait(leave {self.state}, <= {self.seconds:g}s)"


STOP, START, CREATE, DELETE = Action("stop"), Action("start"), Action("create"), Action("delete")
UPDATE = Action("update")
#: What a server that updates jobs in place (OpenSearch: JobObserved.seq) changes without refusing
#: "Not allowed to modify [...]": the schedule, page_size and delay.
IN_PLACE = frozenset({"cron", "page_size", "groups.date_histogram.delay"})
#: How to get a config the server will not take on this job (spec.jobId is immutable).
NEW_JOB = "to get the new config, create a new RollupJob with a new jobId"
ADD_FINALIZER, REMOVE_FINALIZER = Action("add_finalizer"), Action("remove_finalizer")


@dataclass(frozen=True)
class Verdict:
    phase: str
    reason: str
    message: str
    job_state: str  # status.jobState
    in_desired_state: bool = False


@dataclass(frozen=True)
class Decision:
    verdict: Verdict
    action: Action | None = None
    #: Look again after this many seconds even if nothing changes (None: only on change/sync).
    requeue_after: float | None = None
    #: The server changed behind the operator's back (see ``drifted``): announce it once.
    drift: bool = False


@dataclass(frozen=True)
class Progress:
    """The reconciler's memory for one job across passes (reset when the generation changes)."""

    generation: int = 0
    stop_attempts: int = 0
    stop_timeouts: int = 0
    failures: int = 0  # consecutive transient failures, for backoff
    last_outcome: Outcome | None = None
    last_action: str | None = None
    last_stop_at: float | None = None  # wall-clock time (epoch seconds) of the latest stop call
    created: bool = False  # the operator created this job (status.managed)
    #: The server state of the latest successful observation, while that observation showed the
    #: job converged for this generation; None when it did not (or nothing was seen yet). A failed
    #: observation (unreachable, TLS, 5xx) leaves it as it is: not knowing is not a change.
    converged: str | None = None


def _observed_state(obs: Observation) -> str:
    if isinstance(obs, JobObserved):
        return obs.state
    if isinstance(obs, JobAbsent):
        return ABSENT
    return UNKNOWN


def _stalled(reason: str, message: str, obs: Observation) -> Decision:
    return Decision(Verdict(STALLED, reason, message, _observed_state(obs)))


def _failure(spec: JobSpec, failure: Failure, progress: Progress, obs_state: str) -> Decision:
    if failure.transient:
        delay = retry.backoff(spec, progress.failures)
        return Decision(
            Verdict(PROGRESSING, failure.kind, f"{failure.message}; retrying with backoff", obs_state),
            requeue_after=delay,
        )
    return Decision(Verdict(STALLED, failure.kind, failure.message, obs_state))


def decide(spec: JobSpec, obs: Observation, progress: Progress) -> Decision:
    """What to do next for one RollupJob, and what its status should say meanwhile."""
    d = _decide(spec, obs, progress)
    return replace(d, drift=True) if drifted(spec, obs, progress, d) else d


def drifted(spec: JobSpec, obs: Observation, progress: Progress, d: Decision) -> bool:
    """Drift: a successful observation contradicts the spec after an earlier successful one had
    shown the job converged for this generation. A failed observation is not an observation of a
    different state, so an outage is never drift (and a change that happened during one is still
    drift when the server answers again). Not while suspended or deleting. ``progress.converged``
    is kept by ``bookkeeping.settle``."""
    if progress.converged is None or isinstance(obs, Failure) or spec.suspend or spec.deleting:
        return False
    if spec.wants_finalizer != spec.has_finalizer:
        return False  # finalizer bookkeeping, not the server
    return d.verdict.phase not in (READY, SUSPENDED)


def _decide(spec: JobSpec, obs: Observation, progress: Progress) -> Decision:
    state = _observed_state(obs)
    jid = spec.job_id

    # Finalizer bookkeeping comes first: it is a Kubernetes write and needs no server.
    if spec.deleting:
        return _decide_deletion(spec, obs, progress)
    if spec.wants_finalizer and not spec.has_finalizer:
        return Decision(Verdict(PROGRESSING, "AddingFinalizer", "adding the cleanup finalizer (deletionPolicy: Delete)", state), ADD_FINALIZER)
    if not spec.wants_finalizer and spec.has_finalizer:
        return Decision(Verdict(PROGRESSING, "RemovingFinalizer", "removing the cleanup finalizer (deletionPolicy: Retain)", state), REMOVE_FINALIZER)

    if isinstance(obs, Failure):
        return _failure(spec, obs, progress, UNKNOWN)

    if spec.suspend:
        matches = state in (spec.desired, FINISHED) or (spec.desired == STARTED and state in RUNNING_STATES)
        return Decision(Verdict(
            SUSPENDED, "Suspended",
            f"enforcement is suspended; the server reports the job as {state} (desired: {spec.desired})",
            state, in_desired_state=matches,
        ))

    # A refusal of our own create call is final until the spec changes (a new generation resets it).
    if isinstance(progress.last_outcome, Refused) and isinstance(obs, JobAbsent):
        r = progress.last_outcome
        return _stalled(r.reason, r.message, obs)

    if isinstance(obs, JobAbsent):
        if spec.config is not None:
            return Decision(Verdict(PROGRESSING, "Creating", f"creating rollup job [{jid}] from spec.config", ABSENT), CREATE)
        return _stalled(
            "JobNotFound",
            f"rollup job [{jid}] does not exist on connection {spec.connection}; create it on the cluster, "
            f"or set spec.config to let the operator create it",
            obs,
        )

    assert isinstance(obs, JobObserved)
    if spec.config is not None and obs.config is not None:
        diffs = config_differences(spec.config, obs.config)
        named = ", ".join(spec_field(x) for x in diffs)  # as spec.config spells them
        refused = isinstance(progress.last_outcome, Refused) and progress.last_action == UPDATE.kind
        if diffs and obs.seq is not None and progress.created and set(diffs) <= IN_PLACE and not refused:
            return Decision(Verdict(PROGRESSING, "Updating", f"updating rollup job [{jid}] in place ({named})",
                                    obs.state), UPDATE)
        if diffs and refused:
            assert isinstance(progress.last_outcome, Refused)
            if progress.last_outcome.reason == "InvalidSpec":  # the edit itself cannot run there: fix it in place
                return _stalled("InvalidSpec", f"{progress.last_outcome.message}; correct it in spec.config", obs)
            return _stalled("ConfigConflict", f"{progress.last_outcome.message}; {NEW_JOB}", obs)
        if diffs:
            # A spec.config edit (admission lets cron, pageSize and delay change) and a job found with
            # another config both land here when they cannot be applied; nothing is deleted or recreated.
            why = ("OpenSearch updates in place only the cron, pageSize and delay of a job the operator created"
                   if obs.seq is not None else "Elasticsearch cannot update a rollup job in place")
            return _stalled(
                "ConfigConflict",
                f"rollup job [{jid}] exists with a different config ({named}); {why}, so the operator "
                f"leaves it alone: {NEW_JOB}",
                obs,
            )

    # OpenSearch's end states: a one-shot job that rolled up its source is done (never restarted, not
    # drift); a failed run waits for a person, whatever the desired state.
    if obs.state == FINISHED:
        return Decision(Verdict(READY, "Finished", f"rollup job [{jid}] is a one-shot job that has finished; it is not "
                                                   f"started again", FINISHED, in_desired_state=True))
    if obs.state == FAILED:
        return _stalled("JobFailed", f"rollup job [{jid}] failed on the server: {obs.reason}; fix the cause, then start it "
                                     f"on the server (_start puts it in retry) or delete it", obs)
    if spec.desired == STOPPED:
        return _toward_stopped(spec, obs, progress, "Stopped", f"rollup job [{jid}] is stopped")
    return _toward_started(spec, obs, progress)


def _stop_message(spec: JobSpec, obs: JobObserved, progress: Progress) -> str:
    if isinstance(progress.last_outcome, StopTimedOut):
        return (
            f"stop did not complete within {spec.stop_timeout} (state was {obs.state}); Elasticsearch keeps "
            f"stopping the job, retrying (attempt {progress.stop_attempts + 1})"
        )
    return f"stopping rollup job [{spec.job_id}] (state {obs.state})"


def _toward_stopped(spec: JobSpec, obs: JobObserved, progress: Progress, done_reason: str, done_message: str) -> Decision:
    if obs.state == STOPPED:
        return Decision(Verdict(READY, done_reason, done_message, STOPPED, in_desired_state=True))
    if obs.state in (STARTED, INDEXING, STOPPING):
        return Decision(Verdict(PROGRESSING, "Stopping", _stop_message(spec, obs, progress), obs.state), STOP)
    # aborting: the job is being deleted on the server; stop is refused until that settles.
    delay = retry.backoff(spec, progress.failures)
    return Decision(
        Verdict(PROGRESSING, "Aborting", f"rollup job [{spec.job_id}] is aborting; checking again", obs.state),
        Action("wait", state=ABORTING, seconds=delay),
    )


def _toward_started(spec: JobSpec, obs: JobObserved, progress: Progress) -> Decision:
    jid = spec.job_id
    if obs.state in RUNNING_STATES:
        return Decision(Verdict(READY, "Started", f"rollup job [{jid}] is {obs.state}", obs.state, in_desired_state=True))
    if obs.state == STOPPED:
        return Decision(Verdict(PROGRESSING, "Starting", f"starting rollup job [{jid}]", STOPPED), START)
    # stopping or aborting: it cannot be started until it settles; wait on the connection's reads.
    delay = retry.backoff(spec, progress.failures)
    return Decision(
        Verdict(PROGRESSING, "WaitingForStop", f"rollup job [{jid}] is {obs.state}; it will be started once it has stopped", obs.state),
        Action("wait", state=obs.state, seconds=max(delay, retry.WAITING_FOR_STOP_MIN_S)),
    )


def _decide_deletion(spec: JobSpec, obs: Observation, progress: Progress) -> Decision:
    state = _observed_state(obs)
    jid = spec.job_id
    if not spec.has_finalizer:
        return Decision(Verdict(PROGRESSING, "Deleting", "the RollupJob is being deleted", state))
    if spec.deletion_policy != "Delete":
        return Decision(Verdict(PROGRESSING, "Deleting", "deletionPolicy is Retain: the Elasticsearch job is left as it is", state), REMOVE_FINALIZER)
    if spec.release_finalizer:
        return Decision(
            Verdict(PROGRESSING, "FinalizerReleased", f"finalizer released by annotation {RELEASE_ANNOTATION}; rollup job [{jid}] was not touched", state),
            REMOVE_FINALIZER,
        )
    if isinstance(obs, Failure):
        delay = retry.backoff(spec, progress.failures)
        return Decision(
            Verdict(
                PROGRESSING, "DeletionBlocked",
                f"cannot delete rollup job [{jid}]: {obs.message}; the finalizer stays until the job is deleted "
                f"(retrying in {delay:g}s). To give up on the Elasticsearch job, annotate the RollupJob with "
                f"{RELEASE_ANNOTATION}=true",
                UNKNOWN,
            ),
            requeue_after=delay,
        )
    if isinstance(obs, JobAbsent):
        return Decision(Verdict(PROGRESSING, "Deleted", f"rollup job [{jid}] is deleted", ABSENT), REMOVE_FINALIZER)
    assert isinstance(obs, JobObserved)
    if obs.state in (STOPPED, FINISHED, FAILED):  # none of them runs a page
        return Decision(Verdict(PROGRESSING, "Deleting", f"deleting {obs.state} rollup job [{jid}]", obs.state), DELETE)
    d = _toward_stopped(spec, obs, progress, "Deleting", "")
    return replace(d, verdict=replace(d.verdict, message="stopping before deletion: " + d.verdict.message))
