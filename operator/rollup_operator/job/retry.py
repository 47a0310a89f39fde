"""The retry policy: every delay the operator waits before trying something again, in one place.

Pure (no I/O, no clock): callers pass in what happened and get a number of seconds back.

=========================  ==================================================================
what is retried            delay
=========================  ==================================================================
a job's failed look/call   ``spec.backoff``: capped exponential in the consecutive failures
                           (``Progress.failures``), also for waits on ``aborting``/``stopping``
a stop that timed out      at once (the server has just waited ``stop.timeout``), but never
                           sooner than ``poll_interval`` after the previous stop of that job
a finalizer write          1 s after a 409 (the newer object is on its way), else 10 s
a pass that crashed        10 s (a bug must not spin, nor end the job's reconciliation)
a pass asking for another  at once, ``IMMEDIATE_REQUEUES`` times in a row; then
                           ``requeue_backoff``: 5 ms doubling to 1 s (the work queue applies it)
a status write             0.5 s doubling to 10 s, until it lands or the object is gone
kopf's watch reconnects    ``WATCH_ERROR_BACKOFFS``
a server that is silent    not a retry: after ``SLOW_ANSWER_S`` without an answer a job (or
                           connection) with no status for its generation says what it awaits
=========================  ==================================================================
"""

from __future__ import annotations

from rollup_operator.job.spec import JobSpec

FINALIZER_CONFLICT_S = 1.0
FINALIZER_ERROR_S = 10.0
CRASHED_PASS_S = 10.0
STATUS_WRITE_FIRST_S = 0.5
STATUS_WRITE_MAX_S = 10.0
#: kopf's ``settings.networking.error_backoffs`` (watch reconnects after API errors).
WATCH_ERROR_BACKOFFS = (1, 2, 5, 10, 10)
#: How long a look at the server may go unanswered before a job (or a connection) whose status
#: does not describe its current generation yet says what it is waiting for (``Connecting``),
#: rather than saying nothing until ``requestTimeout``.
SLOW_ANSWER_S = 2.0
#: The shortest wait for a job that is stopping before it can be started.
WAITING_FOR_STOP_MIN_S = 1.0


#: Immediate requeues of one key in a row before the work queue spaces them (``requeue_backoff``).
#: A stop confirmed by a read, a finalizer then a call: a normal flow needs a handful.
IMMEDIATE_REQUEUES = 10
REQUEUE_FIRST_S = 0.005
REQUEUE_MAX_S = 1.0


def requeue_backoff(beyond: int) -> float:
    """The delay of the ``beyond``-th requeue past ``IMMEDIATE_REQUEUES`` in a row (1, 2, ...)."""
    return min(REQUEUE_FIRST_S * float(2 ** max(0, beyond - 1)), REQUEUE_MAX_S)


def backoff(spec: JobSpec, failures: int) -> float:
    """The delay before the next look or call after ``failures`` consecutive failures."""
    return spec.backoff.delay(failures + 1)


def stop_spacing(poll_interval: float, since_last_stop: float | None, last_timed_out: bool) -> float:
    """How long to hold a stop so that retries after a timeout are a poll interval apart.

    A stop that timed out is re-sent at once, because the server has just waited ``stop.timeout``;
    a timeout shorter than the poll interval (the schema accepts "1ms") would make that a tight loop.
    """
    if not last_timed_out or since_last_stop is None:
        return 0.0
    return max(0.0, poll_interval - since_last_stop)


def finalizer_retry(status: int | None) -> float:
    return FINALIZER_CONFLICT_S if status == 409 else FINALIZER_ERROR_S


def status_write_retry(previous: float | None) -> float:
    """The delay before the next attempt of a status write (``previous``: the last delay, if any)."""
    if previous is None:
        return STATUS_WRITE_FIRST_S
    return min(previous * 2, STATUS_WRITE_MAX_S)
