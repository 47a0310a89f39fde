"""What each action of the decision does: one table from ``Action.kind`` to one async function.

Each function gets the pass's :class:`Context` and returns a value (:data:`Result`): an
:class:`Acted` (a call's outcome, and what it showed of the server job), a :class:`Written` object
or a :class:`RetryAfter` (Kubernetes writes), :data:`LOOK_AGAIN` (credentials rotated), or None
when the pass must decide again (the spec moved on while the call queued for a slot). Actions
write nothing of the job: the pass folds what they return into its progress
(``progress.advance``; what an outcome says of the server, ``progress.observation_after``). A
new action is one entry here and one rule in decide.py.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass
from typing import Any, Awaitable, Callable

from rollup_operator.job import retry
from rollup_operator.engine.connection import ROTATED, Connection, Rotated, StopRequest
from rollup_operator.job.decide import Action
from rollup_operator.kube.client import Kube, KubeError
from rollup_operator.job.spec import FINALIZER, JobSpec
from rollup_operator.job.observations import JobObserved, Observation, Outcome, StopTimedOut
from rollup_operator.job.store import JobEntry


@dataclass
class Context:
    entry: JobEntry  # read only: the pass alone writes the entry
    spec: JobSpec
    action: Action
    obs: Observation
    conn: Connection | None
    kube: Kube
    poll_interval: float
    #: The pass's context from the work queue: set once the job was queued again (a newer spec, a
    #: claim or connection change); a call still waiting for a request slot is then not sent.
    superseded: asyncio.Event
    #: The stop this action sent or is sending (``_stop``): the pass reads ``sent_at`` from it,
    #: also when the action was abandoned or cancelled.
    stop: StopRequest | None = None


class _Keep:
    """``Acted.observation``: keep the cached observation as it is."""


KEEP = _Keep()


@dataclass(frozen=True)
class Acted:
    """A call's outcome: the pass folds it into the job's progress (``progress.advance``)."""

    outcome: Outcome | Observation
    #: What the call showed of the server job; None: confirm with the next shared read.
    observation: Observation | _Keep | None = None


@dataclass(frozen=True)
class Written:
    """A Kubernetes write's answer: the object as the API server stored it."""

    obj: dict[str, Any]


@dataclass(frozen=True)
class RetryAfter:
    """A Kubernetes write failed: try again after this many seconds."""

    seconds: float


class LookAgain:
    """Refused (401) with credentials rotated since: look again with the new client, fold nothing."""


LOOK_AGAIN = LookAgain()
#: What an action returns; None: the spec moved on while the call queued for a slot (decide again).
Result = Acted | Written | RetryAfter | LookAgain | None
Run = Callable[[Context], Awaitable[Result]]


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


async def _stop(ctx: Context) -> Result:
    conn, spec, p = _conn(ctx), ctx.spec, ctx.entry.progress
    since = time.time() - p.last_stop_at if p.last_stop_at is not None else None
    gap = retry.stop_spacing(ctx.poll_interval, since, isinstance(p.last_outcome, StopTimedOut))
    if gap > 0:
        await asyncio.sleep(gap)  # a spec change cancels this wait (the action is interruptible)
    ctx.stop = StopRequest(spec.job_id, spec.wait_for_completion, spec.stop_timeout, spec.stop_timeout_s, ctx.superseded)
    res = await conn.stop(ctx.stop, ctx.entry.log)
    if res is None or res is ROTATED:
        return None if res is None else LOOK_AGAIN
    assert isinstance(res, tuple)
    return Acted(res[0], res[1])


def _call(api: str) -> Run:
    async def run(ctx: Context) -> Result:
        spec = ctx.spec
        ctx.entry.log.info("%s rollup job [%s]", api, spec.job_id)
        if api == "start":
            out = await _conn(ctx).call(lambda gw: gw.start(spec.job_id), ctx.superseded)
        elif api == "create":
            out = await _conn(ctx).call(lambda gw: gw.create(spec.job_id, spec.config or {}), ctx.superseded)
        elif api == "update":  # OpenSearch: guarded by the _seq_no the decision saw (decide only asks with one)
            seen = ctx.obs if isinstance(ctx.obs, JobObserved) else JobObserved("unknown")
            out = await _conn(ctx).call(lambda gw: gw.update(spec.job_id, spec.config or {}, seen), ctx.superseded)
        else:
            out = await _conn(ctx).call(lambda gw: gw.delete(spec.job_id), ctx.superseded)
        if out is None:
            return None
        if out is ROTATED:
            return LOOK_AGAIN
        assert not isinstance(out, Rotated)
        return Acted(out)
    return run


async def _wait(ctx: Context) -> Result:
    """Wait (on the connection's shared poll) for the job to leave ``action.state``."""
    state = ctx.action.state
    res = await _conn(ctx).reads.wait_for(ctx.spec.job_id, lambda o: not (isinstance(o, JobObserved) and o.state == state), ctx.action.seconds)
    return Acted(res if res is not None else ctx.obs, res if res is not None else KEEP)


# --- Kubernetes writes --------------------------------------------------------------------------


def _finalizer(present: bool) -> Run:
    async def run(ctx: Context) -> Result:
        entry = ctx.entry
        fins = [f for f in entry.finalizers if f != FINALIZER] + ([FINALIZER] if present else [])
        try:
            obj = await ctx.kube.set_finalizers(entry.namespace, entry.name, fins, str(entry.rv) if entry.rv else None)
        except KubeError as e:
            if e.status != 409:  # 409: the object moved on; its newer version is on its way through the watch
                entry.log.error("cannot update finalizers: %s", e)
            return RetryAfter(retry.finalizer_retry(e.status))
        return Written(obj) if obj is not None else None
    return run


ACTIONS: dict[str, Impl] = {
    "stop": Impl(_stop, interruptible=True),
    "start": Impl(_call("start"), interruptible=True),
    "create": Impl(_call("create"), interruptible=False),  # short, and must not be left half done
    "delete": Impl(_call("delete"), interruptible=False),
    "update": Impl(_call("update"), interruptible=False),
    "wait": Impl(_wait, interruptible=True),
    "add_finalizer": Impl(_finalizer(True), interruptible=False, needs_connection=False),
    "remove_finalizer": Impl(_finalizer(False), interruptible=False, needs_connection=False),
}
