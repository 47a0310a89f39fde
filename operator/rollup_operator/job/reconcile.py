"""One reconcile pass of one RollupJob, in numbered steps.

The work queue (workqueue.py) runs at most one pass per job at a time and asks for another when
the job changes meanwhile; a pass returns a :class:`~.workqueue.Result` saying when to come back.

1. load: the job's entry from the store; a spec that cannot be acted on gets its status and ends;
2. observe: the cached observation, or a fresh one from the connection's shared read; a
   convergence claim is always based on a read sent after the latest spec change;
   claim: only the owner of the server job acts (ownership.py, the claims in the store); any other
   RollupJob naming the same job on the same cluster is Stalled (``DuplicateJob``) and sends nothing;
3. decide (pure, decide.py; ownership.duplicate for a job that is not the owner);
4. publish: the status rebuilt from the decision, written only if it differs, an event only on a
   transition (status_writer.py);
5. act (actions.py), interruptibly where the action allows: a newer spec cancels the call in
   flight and the next pass decides from the newest spec, so no stale call is sent after a change;
6. requeue: at once after an action (its outcome is folded into the job's progress and the next
   pass looks at its effect), after the decision's delay, or not at all (converged or stalled:
   the connection's sync wakes it when the server changes).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from typing import Awaitable, Callable, TypeVar

from rollup_operator import metrics
from rollup_operator.timefmt import rfc3339
from rollup_operator.job import ownership
from rollup_operator.job import retry
from rollup_operator.job.actions import ACTIONS, KEEP, Context, LookAgain, RetryAfter, Written
from rollup_operator.job.actions import Result as ActionResult
from rollup_operator.engine.connection import Connection
from rollup_operator.job.progress import advance, observation_after, read_failed, read_succeeded, settle, stop_abandoned, stop_sent
from rollup_operator.job.decide import READY, Action, Decision, decide
from rollup_operator.kube.client import Kube
from rollup_operator.job.spec import JobSpec
from rollup_operator.job.observations import CONNECTION_NOT_FOUND, Failure, Observation
from rollup_operator.job.status import awaits_first_answer, connecting_status, invalid_status, publication, ready_reason
from rollup_operator.kube.status_writer import StatusWriter
from rollup_operator.job.spec import Key
from rollup_operator.job.store import JobEntry, Store
from rollup_operator.job.workqueue import AGAIN, DONE, Result

log = logging.getLogger("rollup_operator")
T = TypeVar("T")

ConnectionLookup = Callable[[str, str], Awaitable[Connection | None]]


async def interruptible(superseded: asyncio.Event, coro: Awaitable[T]) -> tuple[bool, T | None]:
    """Run ``coro`` unless ``superseded`` is set first; then cancel it. Returns (completed, result).
    Cancelling the caller cancels ``coro`` too."""
    task = asyncio.ensure_future(coro)
    changed = asyncio.ensure_future(superseded.wait())
    try:
        await asyncio.wait({task, changed}, return_when=asyncio.FIRST_COMPLETED)
    finally:
        changed.cancel()
        if not task.done():
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
            completed = False
        else:
            completed = True
    if completed:
        return True, task.result()
    return False, None


async def announcing(aw: Awaitable[T], after: float, announce: Callable[[], None] | None) -> T:
    """Await ``aw``; if ``announce`` is given and ``aw`` is still pending after ``after`` seconds, call it
    once and go on waiting (a silent server is reported at once, not at requestTimeout). Cancelling
    the caller cancels ``aw``."""
    task = asyncio.ensure_future(aw)
    try:
        if announce is not None:
            await asyncio.wait({task}, timeout=after)
            if not task.done():
                announce()
        return await task
    finally:
        task.cancel()


class Reconciler:
    """The pass of one job. Its collaborators: the store (the cache it reads and, alone, writes
    progress into), the status writer, the Kubernetes client (finalizer writes), and the
    connection lookup. It never sees the work queue: each pass gets its ``superseded`` event."""

    def __init__(self, store: Store, writer: StatusWriter, kube: Kube, connection: ConnectionLookup, *, poll_interval: float = 1.0):
        self.store = store
        self.writer = writer
        self.kube = kube
        self.connection = connection
        self.poll_interval = poll_interval

    async def reconcile(self, key: Key, superseded: asyncio.Event) -> Result:
        entry = self.store.jobs.get(key)
        if entry is None:
            return DONE
        try:
            return await self._pass(entry, superseded)
        except asyncio.CancelledError:
            self.persist_abandoned_stop(entry)
            raise
        except Exception:  # noqa: BLE001 - a bug must not end the job's reconciliation for good
            entry.log.exception("unexpected error while reconciling; retrying in %gs", retry.CRASHED_PASS_S)
            return Result(requeue_after=retry.CRASHED_PASS_S)

    async def _pass(self, entry: JobEntry, superseded: asyncio.Event) -> Result:
        now = time.monotonic()
        if entry.look_again_at is not None:  # a timed requeue: the cached observation is stale by now
            if now >= entry.look_again_at - 0.001:
                entry.forget_observation(now)
            entry.look_again_at = None
        # 1. load
        spec = entry.spec
        if entry.invalid is not None or spec is None:
            self.publish_invalid(entry)
            return DONE
        conn = await self.connection(spec.namespace, spec.connection)
        # 2. observe, and who owns the server job (once per pass)
        obs = await self._observe(entry, spec, conn, fresh=entry.obs is None)
        own = entry.ownership = self.store.ownership(entry)  # the observation settled the connection's cluster
        if not own.certain:  # an older claim's cluster is not known yet: neither act nor say anything
            return Result(requeue_after=self.poll_interval)
        # 3. decide
        if own.owner is not None:
            d = ownership.duplicate(spec, obs, own.owner)
        else:
            d = decide(spec, obs, entry.progress)
        if own.owner is None and d.action is None and entry.obs_time < entry.need_fresh_after and not isinstance(obs, Failure):
            obs = await self._observe(entry, spec, conn, fresh=True)  # claim convergence on fresh data only
            d = decide(spec, obs, entry.progress)
        if superseded.is_set():
            return DONE  # the queue runs the next pass at once, from the newer spec
        # 4. publish: the status rebuilt from this decision, an Event on a transition
        self.publish(entry, spec, d, obs, acting_owner=own.owner is None)
        entry.progress = settle(entry.progress, obs, d)  # what the next pass's drift check compares with
        if d.verdict.phase == READY and d.verdict.reason == "Stopped" and entry.stop_started is not None:
            metrics.STOP_DURATION.observe(time.monotonic() - entry.stop_started)
            entry.stop_started = None
        # 5. act, 6. requeue
        if d.action is None:
            if d.requeue_after is None:
                return DONE
            if isinstance(obs, Failure):
                entry.progress = read_failed(entry.progress)  # the next look backs off further
            entry.look_again_at = time.monotonic() + d.requeue_after
            return Result(requeue_after=d.requeue_after)
        return await self._act(entry, spec, conn, d, obs, superseded)

    async def _observe(self, entry: JobEntry, spec: JobSpec, conn: Connection | None, *, fresh: bool) -> Observation:
        if conn is None:
            return Failure(CONNECTION_NOT_FOUND, f"ElasticsearchConnection {spec.namespace}/{spec.connection} does not exist")
        if not fresh and entry.obs is not None:
            return entry.obs
        def connecting() -> None:
            self.writer.publish(entry, connecting_status(spec, conn.awaiting(), entry.progress, entry.status, rfc3339()))
        snap = await announcing(conn.reads.snapshot(entry.need_fresh_after), retry.SLOW_ANSWER_S,
                                connecting if awaits_first_answer(entry.status, spec.generation) else None)
        entry.obs, entry.obs_time = snap.observe(spec.job_id), snap.started_at
        if not isinstance(entry.obs, Failure):
            entry.progress = read_succeeded(entry.progress)
        return entry.obs

    async def _act(self, entry: JobEntry, spec: JobSpec, conn: Connection | None, d: Decision, obs: Observation,
                   superseded: asyncio.Event) -> Result:
        action = d.action
        assert action is not None
        impl = ACTIONS[action.kind]
        assert entry.ownership is None or entry.ownership.owner is None or not impl.needs_connection, "a duplicate never calls"
        ctx = Context(entry, spec, action, obs, conn, self.kube, self.poll_interval, superseded)
        if action.kind == "stop":
            entry.stop_started = entry.stop_started or time.monotonic()
        done = True
        try:
            if impl.interruptible:
                done, acted = await interruptible(superseded, impl.run(ctx))
                if not done:
                    entry.log.info("spec changed while a call was in flight; the call was abandoned and the newest spec wins")
            else:
                acted = await impl.run(ctx)
        except asyncio.CancelledError:
            self._stop_abandoned(entry, ctx)  # shutting down: reconcile() persists the count
            raise
        if not done:
            self._stop_abandoned(entry, ctx)
        if ctx.stop is not None and ctx.stop.sent_at is not None and done:
            entry.progress = stop_sent(entry.progress, ctx.stop.sent_at)
        return self._fold(entry, spec, action, obs, acted)

    def _fold(self, entry: JobEntry, spec: JobSpec, action: Action, obs: Observation, acted: ActionResult) -> Result:
        """What an action returned, into the job's entry; and when to look again."""
        now = time.monotonic()
        if acted is None:
            return AGAIN
        if isinstance(acted, LookAgain):
            entry.log.info("%s of rollup job [%s] was refused (401); the connection's Secret changed, retrying", action.kind, spec.job_id)
            entry.forget_observation(now)
            return AGAIN
        if isinstance(acted, Written):  # the API server's answer goes into the store as the watch would bring it
            self.store.put_job(acted.obj, now)
            return AGAIN
        if isinstance(acted, RetryAfter):
            return Result(requeue_after=acted.seconds)
        outcome = acted.outcome
        entry.progress = advance(entry.progress, action, outcome)  # type: ignore[arg-type]  # a wait folds an observation
        if acted.observation is not KEEP:
            nxt = acted.observation if acted.observation is not None else observation_after(action, outcome, obs)  # type: ignore[arg-type]
            if nxt is None:  # success: confirm with the connection's next shared read
                entry.forget_observation(now)
            else:
                entry.obs, entry.obs_time = nxt, now  # type: ignore[assignment]
        if isinstance(outcome, Failure) and action.kind != "wait":
            entry.log.warning("%s of rollup job [%s] failed: %s", action.kind, spec.job_id, outcome.message)
        return AGAIN

    @staticmethod
    def _stop_abandoned(entry: JobEntry, ctx: Context) -> None:
        """A stop sent and then abandoned before its answer still counts as an attempt of this
        generation (progress.stop_abandoned)."""
        if ctx.stop is not None and ctx.stop.sent_at is not None and entry.progress.generation == ctx.spec.generation:
            entry.progress = stop_abandoned(stop_sent(entry.progress, ctx.stop.sent_at))

    # --- status and events ------------------------------------------------------------------

    def publish(self, entry: JobEntry, spec: JobSpec, d: Decision, obs: Observation, *, acting_owner: bool = False) -> None:
        """Build the status from the decision and queue it (written only if it differs), with its
        Events. ``acting_owner``: the pass acts as the owner of the server job, so a stored
        ``DuplicateJob`` status means it has just taken over (status.publication)."""
        pub = publication(spec, d, obs, entry.progress, entry.status, rfc3339(), acting_owner=acting_owner)
        if pub.resolved is not None:
            self.writer.publish(entry, None, pub.resolved)
        metrics.RECONCILES.labels(result=d.verdict.phase).inc()
        self.writer.publish(entry, pub.status, pub.event)

    def persist_abandoned_stop(self, entry: JobEntry) -> None:
        """A pass cancelled with a stop call in flight (SIGTERM: the controller cancels every pass
        and then lets the queued writes land) counted that call (bookkeeping.stop_abandoned); write the
        count so that the next operator carries it on (store.resume)."""
        p = entry.progress
        stored = entry.status.get("stopAttempts") or 0
        if p.stop_attempts <= stored or entry.status.get("observedGeneration") != p.generation:
            return
        wanted = {"stopAttempts": p.stop_attempts,
                  "lastStopAttemptTime": rfc3339(p.last_stop_at) if p.last_stop_at is not None else None}
        self.writer.publish(entry, {k: v for k, v in wanted.items() if v is not None})

    def publish_invalid(self, entry: JobEntry) -> None:
        wanted = invalid_status(entry.generation, entry.invalid or "invalid spec", entry.status, rfc3339())
        metrics.RECONCILES.labels(result="InvalidSpec").inc()
        prev_reason = ready_reason(entry.status)
        event = ("Warning", "InvalidSpec", entry.invalid or "") if prev_reason != "InvalidSpec" else None
        self.writer.publish(entry, wanted, event)
