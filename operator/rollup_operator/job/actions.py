"""What each action of the decision does: one table from ``Action.kind`` to one async function.

Each function gets the pass's :class:`Context` and returns an :class:`Acted` (the outcome, and
what it showed of the server job) or None when the pass must decide again (the spec moved on
while the call queued for a slot). How an outcome changes the job's progress is the pure
``bookkeeping.advance``; what it says of the server, ``bookkeeping.observation_after``. A new action is one
entry here and one rule in decide.py.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass
from typing import Any, Awaitable, Callable

from rollup_operator.job import retry
from rollup_operator.engine.connection import ROTATED, Connection, Rotated
from rollup_operator.job.progress import stop_abandoned, stop_sent
from rollup_operator.job.decide import Action, Progress
from rollup_operator.kube.client import Kube, KubeError
from rollup_operator.job.spec import FINALIZER, JobSpec
from rollup_operator.job.observations import Failure, JobObserved, Observation, Outcome, StopTimedOut
from rollup_operator.job.store import JobEntry


@dataclass
class Context:
    entry: JobEntry
    spec: JobSpec
    action: Action
    obs: Observation
    conn: Connection | None
    kube: Kube
    poll_interval: float

    def still_wanted(self) -> bool:
        """The spec this pass decided from is still the newest one."""
        return self.entry.spec is self.spec


class _Keep:
    """``Acted.observation``: keep the cached observation as it is."""


KEEP = _Keep()


@dataclass(frozen=True)
class Acted:
    outcome: Outcome | Observation | None
    #: What the call showed of the server job; None: confirm with the next shared read.
    observation: Observation | _Keep | None = None
    #: Fold the outcome into the job's progress (``bookkeeping.advance``); finalizer writes are not.
    fold: bool = True
    #: The object a Kubernetes write answered with (goes into the store like a watch event).
    updated: dict[str, Any] | None = None
    #: Try again after this many seconds (a Kubernetes write that failed).
    retry_after: float | None = None
    #: Refused (401) with credentials rotated since: look again with the new client, fold nothing.
    look_again: bool = False


LOOK_AGAIN = Acted(None, fold=False, look_again=True)
Run = Callable[[Context], Awaitable["Acted | None"]]


@dataclass(frozen=True)
class Impl:
    run: Run
    #: A newer spec abandons the call in flight (cancelled); else it runs to its end.
    interruptible: bool
    needs_connection: bool = True


# --- Elasticsearch calls ------------------------------------------------------------------------


def _conn(ctx: Context) -> Connection:
    assert ctx.conn is not None
    return ctx.conn


async def _stop(ctx: Context) -> Acted | None:
    conn, spec, entry = _conn(ctx), ctx.spec, ctx.entry
    gw = await conn.gateway_or_failure()
    if isinstance(gw, Failure):
        return Acted(gw)
    p: Progress = entry.progress
    since = time.time() - p.last_stop_at if p.last_stop_at is not None else None
    gap = retry.stop_spacing(ctx.poll_interval, since, isinstance(p.last_outcome, StopTimedOut))
    if gap > 0:
        await asyncio.sleep(gap)  # a spec change cancels this wait (the action is interruptible)
    entry.stop_started = entry.stop_started or time.monotonic()
    entry.progress = stop_sent(entry.progress, time.time())
    generation, sent = entry.progress.generation, False

    def on_send() -> None:
        nonlocal sent
        sent = True
        entry.progress = stop_sent(entry.progress, time.time())

    try:
        res = await conn.stop(spec.job_id, wait_wanted=spec.wait_for_completion, timeout=spec.stop_timeout,
                              timeout_s=spec.stop_timeout_s, still_wanted=ctx.still_wanted, log=entry.log, on_send=on_send)
    except asyncio.CancelledError:
        # Abandoned with the request sent (shutdown, or a newer spec): it was an attempt all the
        # same. The reconciler persists the count if the operator is shutting down.
        if sent and entry.progress.generation == generation:
            entry.progress = stop_abandoned(entry.progress)
        raise
    if res is None:
        return None
    if res is ROTATED:
        return LOOK_AGAIN
    assert isinstance(res, tuple)
    return Acted(res[0], res[1])


def _call(api: str) -> Run:
    async def run(ctx: Context) -> Acted | None:
        spec = ctx.spec
        ctx.entry.log.info("%s rollup job [%s]", api, spec.job_id)
        if api == "start":
            out = await _conn(ctx).call(lambda gw: gw.start(spec.job_id), ctx.still_wanted)
        elif api == "create":
            out = await _conn(ctx).call(lambda gw: gw.create(spec.job_id, spec.config or {}), ctx.still_wanted)
        else:
            out = await _conn(ctx).call(lambda gw: gw.delete(spec.job_id), ctx.still_wanted)
        if out is None:
            return None
        if out is ROTATED:
            return LOOK_AGAIN
        assert not isinstance(out, Rotated)
        return Acted(out)
    return run


async def _wait(ctx: Context) -> Acted | None:
    """Wait (on the connection's shared poll) for the job to leave ``action.state``."""
    state = ctx.action.state
    res = await _conn(ctx).reads.wait_for(ctx.spec.job_id, lambda o: not (isinstance(o, JobObserved) and o.state == state), ctx.action.seconds)
    return Acted(res if res is not None else ctx.obs, res if res is not None else KEEP)


# --- Kubernetes writes --------------------------------------------------------------------------


def _finalizer(present: bool) -> Run:
    async def run(ctx: Context) -> Acted | None:
        entry = ctx.entry
        fins = [f for f in entry.finalizers if f != FINALIZER] + ([FINALIZER] if present else [])
        try:
            obj = await ctx.kube.set_finalizers(entry.namespace, entry.name, fins, str(entry.rv) if entry.rv else None)
        except KubeError as e:
            if e.status != 409:  # 409: the object moved on; its newer version is on its way through the watch
                entry.log.error("cannot update finalizers: %s", e)
            return Acted(None, fold=False, retry_after=retry.finalizer_retry(e.status))
        return Acted(None, fold=False, updated=obj)
    return run


ACTIONS: dict[str, Impl] = {
    "stop": Impl(_stop, interruptible=True),
    "start": Impl(_call("start"), interruptible=True),
    "create": Impl(_call("create"), interruptible=False),  # short, and must not be left half done
    "delete": Impl(_call("delete"), interruptible=False),
    "wait": Impl(_wait, interruptible=True),
    "add_finalizer": Impl(_finalizer(True), interruptible=False, needs_connection=False),
    "remove_finalizer": Impl(_finalizer(False), interruptible=False, needs_connection=False),
}
