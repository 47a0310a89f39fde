"""Progress bookkeeping after a pass (pure): how what happened folds into a job's ``Progress``.

``decide.decide`` reads a job's :class:`~.decide.Progress`; the functions here write it, one per
thing a pass can leave behind:

- ``advance``: an action's outcome (stop attempts and timeouts, created, the failure streak);
- ``stop_sent`` / ``stop_abandoned``: a stop call on the wire, and one abandoned before its answer;
- ``read_failed`` / ``read_succeeded``: a look at the server that failed, and the end of that streak;
- ``settle``: what the decision showed, for the next drift check (``decide.drifted``);
- ``observation_after``: what an outcome tells of the server without another read.

Nothing here does I/O or reads a clock; the reconciler is the one place that stores the result.
"""

from __future__ import annotations

from dataclasses import replace

from rollup_operator.job.decide import READY, Action, Decision, Progress
from rollup_operator.job.observations import Done, Failure, JobAbsent, JobObserved, Observation, Outcome, Refused, StopTimedOut, WrongState


def advance(progress: Progress, action: Action, outcome: Outcome) -> Progress:
    """Fold an action's outcome into the job's progress (pure)."""
    p = replace(progress, last_outcome=outcome, last_action=action.kind)
    if action.kind == "stop":
        p = replace(p, stop_attempts=p.stop_attempts + 1)
        if isinstance(outcome, StopTimedOut):
            p = replace(p, stop_timeouts=p.stop_timeouts + 1)
    if action.kind == "create" and isinstance(outcome, Done):
        p = replace(p, created=True)
    if isinstance(outcome, Failure) and outcome.transient or isinstance(outcome, WrongState) or action.kind == "wait":
        p = replace(p, failures=p.failures + 1)
    elif not isinstance(outcome, (StopTimedOut,)):
        p = replace(p, failures=0)
    return p


def stop_sent(progress: Progress, at: float) -> Progress:
    """A stop call is about to be sent at wall-clock time ``at`` (pure)."""
    return replace(progress, last_stop_at=at)


def stop_abandoned(progress: Progress) -> Progress:
    """A stop call was sent and then abandoned before its answer (the operator shut down, or the
    pass was interrupted): it still counts as an attempt of this generation (pure)."""
    return replace(progress, stop_attempts=progress.stop_attempts + 1, last_action="stop")


def read_failed(progress: Progress) -> Progress:
    """A look at the server failed (unreachable, TLS, 5xx) and the job waits to look again: that is
    one more consecutive failure, so the next wait backs off further (pure)."""
    return replace(progress, failures=progress.failures + 1, last_action="read")


def read_succeeded(progress: Progress) -> Progress:
    """A look at the server succeeded: a streak of failed reads is over (pure)."""
    if progress.last_action == "read":
        return replace(progress, failures=0, last_action=None)
    return progress


def settle(progress: Progress, obs: Observation, d: Decision) -> Progress:
    """Remember what this pass's decision showed for the next drift check (pure): a successful
    observation records whether the job is converged; a failed one changes nothing."""
    if isinstance(obs, Failure):
        return progress
    converged = obs.state if isinstance(obs, JobObserved) and d.verdict.phase == READY else None
    return progress if converged == progress.converged else replace(progress, converged=converged)


def observation_after(action: Action, outcome: Outcome, before: Observation) -> Observation | None:
    """What an outcome tells us of the server without another read, or None if a read is needed.

    A successful call is always confirmed by a read (the connection's shared, coalesced read);
    a timeout and a refusal carry the state in their message, so no read is spent on them.
    """
    stats = before.stats if isinstance(before, JobObserved) else {}
    config = before.config if isinstance(before, JobObserved) else None
    if isinstance(outcome, StopTimedOut):
        return JobObserved(outcome.state, stats, config)
    if isinstance(outcome, WrongState):
        return JobObserved(outcome.state, stats, config)
    if isinstance(outcome, (JobAbsent, Failure)):
        return outcome
    if isinstance(outcome, Refused):
        return JobAbsent()
    if isinstance(outcome, Done) and action.kind == "delete":
        return JobAbsent()
    return None
