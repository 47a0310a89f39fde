"""The reconciler: keeps every RollupJob's server job in its desired state, one worker per busy job.

kopf's watch feeds ``on_job_event``/``on_connection_event`` (see handlers.py). A job gets a worker
task only while there is something to do; it ends when the job is converged or stalled. Each pass
of a worker:

1. observe: the job's latest known observation, or a fresh one from its connection's shared read
   (a converged claim is always based on a read made after the latest spec change);
2. decide (pure, decide.py) and publish the verdict: status is rebuilt and patched only if it
   differs; an Event only on a transition;
3. act through the connection's gateway, interruptibly: a newer spec cancels the call in flight
   and the next pass decides from the newest spec, so no stale call is sent after a change.

Per connection, a sync task reads ``GET _rollup/job/_all`` every ``syncInterval``, refreshes
the connection's status, and wakes only the jobs whose status or desired state no longer matches.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from dataclasses import dataclass, field, replace
from typing import Any

from . import conditions as cond, credentials, metrics
from .connections import Connection, Snapshot, build as build_connection
from .decide import (
    READY,
    Action,
    Decision,
    Progress,
    advance,
    decide,
    observation_after,
    read_failed,
    read_succeeded,
)
from .gateway import Gateway
from .kube import Kube, KubeError, resource_version
from .status_writer import StatusWriter
from .model import FINALIZER, JOB_KIND, CONNECTION_KIND, InvalidSpec, JobSpec, job_spec_from_body
from .observations import (
    CONNECTION_NOT_FOUND,
    INDEXING,
    STARTED,
    STOPPING,
    UNAUTHORIZED,
    Done,
    Failure,
    JobObserved,
    Observation,
    StopTimedOut,
)
from .status import apply_patch, connection_status, invalid_status, job_status, now_iso, status_patch, transition_event

log = logging.getLogger("rollup_operator")


@dataclass(eq=False)
class JobRuntime:
    namespace: str
    name: str
    uid: str = ""
    spec: JobSpec | None = None
    invalid: str | None = None
    generation: int = 0
    trigger: tuple | None = None  # what, when it changes, needs a new pass
    rv: int = 0
    finalizers: tuple[str, ...] = ()
    status: dict = field(default_factory=dict)
    progress: Progress = field(default_factory=Progress)
    obs: Observation | None = None
    obs_time: float = -1.0
    need_fresh_after: float = 0.0
    changed: asyncio.Event = field(default_factory=asyncio.Event)
    task: asyncio.Task | None = None
    writer: asyncio.Task | None = None  # drains ``outbox`` (see status_writer.py)
    outbox: list = field(default_factory=list)  # queued (status patch, event) pairs
    stop_started: float | None = None
    last_stop_sent: float | None = None  # monotonic time of the latest stop call

    @property
    def ref(self) -> dict:
        return {"kind": JOB_KIND, "namespace": self.namespace, "name": self.name, "uid": self.uid}

    @property
    def log(self) -> logging.LoggerAdapter:
        conn = self.spec.connection if self.spec else None
        return logging.LoggerAdapter(log, {"job": self.name, "namespace": self.namespace, "connection": conn})


class Controller:
    def __init__(self, kube: Kube, *, poll_interval: float = 1.0, coalesce_window: float = 0.05):
        self.kube = kube
        self.poll_interval = poll_interval
        self.coalesce_window = coalesce_window
        self.jobs: dict[tuple[str, str], JobRuntime] = {}
        self.connections: dict[tuple[str, str], Connection] = {}
        self.conn_state: dict[tuple[str, str], dict] = {}  # generation, status, rv
        self.sync_tasks: dict[tuple[str, str], asyncio.Task] = {}
        self.by_connection: dict[tuple[str, str], set[tuple[str, str]]] = {}
        self.closing = False
        self.status_writer = StatusWriter(kube, lambda: self.closing)

    # --- input: watch events -------------------------------------------------------------------

    def on_job_event(self, etype: str | None, body: dict) -> None:
        meta = body.get("metadata") or {}
        key = (meta.get("namespace", ""), meta.get("name", ""))
        if etype == "DELETED":
            rt = self.jobs.pop(key, None)
            if rt is not None:
                self._unindex(rt)
                if rt.task:
                    rt.task.cancel()
            return
        rt = self.jobs.get(key)
        if rt is None:
            rt = self.jobs[key] = JobRuntime(*key)
        rv = resource_version(meta)
        if rv and rv < rt.rv:
            return  # older than what we already know (e.g. our own patch's answer came first)
        rt.rv = rv or rt.rv
        rt.uid = meta.get("uid", rt.uid)
        if rt.writer is None or rt.writer.done():
            rt.status = dict(body.get("status") or {})
        # else: our own status patches are still queued, and rt.status already is what the stored
        # status becomes once they land. This event's status predates them; taking it would make the
        # next patch a diff against a version they are about to overwrite, dropping fields (e.g.
        # Ready=True stored next to the jobState of an older patch).
        rt.finalizers = tuple(meta.get("finalizers") or ())
        try:
            spec, invalid = job_spec_from_body(body), None
        except InvalidSpec as e:
            spec, invalid = None, str(e)
        generation = int(meta.get("generation") or 0)
        trigger = (generation, invalid, spec)
        if trigger == rt.trigger:
            return
        if generation != rt.generation:
            rt.progress = Progress(generation=generation, created=rt.progress.created)
            if rt.generation == 0 and rt.status.get("observedGeneration") == generation:
                # First sight of a job this process has not worked on (e.g. after a restart), whose
                # status describes this very generation: carry on its stop count instead of
                # restarting it from zero (the stops already sent count; their timeouts, if any,
                # were already announced).
                attempts = int(rt.status.get("stopAttempts") or 0)
                rt.progress = replace(rt.progress, stop_attempts=attempts, stop_timeouts=attempts,
                                      last_stop_at=rt.status.get("lastStopAttemptTime"))
            rt.need_fresh_after = time.monotonic()
            rt.generation = generation
        self._unindex(rt)
        rt.trigger, rt.spec, rt.invalid = trigger, spec, invalid
        if spec is not None:
            self.by_connection.setdefault((spec.namespace, spec.connection), set()).add(key)
        rt.changed.set()
        self._ensure_worker(rt)

    def _unindex(self, rt: JobRuntime) -> None:
        if rt.spec is not None:
            self.by_connection.get((rt.spec.namespace, rt.spec.connection), set()).discard((rt.namespace, rt.name))

    def on_connection_event(self, etype: str | None, body: dict) -> None:
        meta = body.get("metadata") or {}
        key = (meta.get("namespace", ""), meta.get("name", ""))
        state = self.conn_state.setdefault(key, {"generation": None, "status": {}, "rv": 0})
        rv = resource_version(meta)
        if etype != "DELETED" and rv and rv < state["rv"]:
            return
        state["rv"] = rv
        state["uid"] = meta.get("uid")
        state["status"] = dict(body.get("status") or {})
        if etype == "DELETED":
            self.conn_state.pop(key, None)
            self._replace_connection(key, None)
            return
        generation = meta.get("generation")
        if generation == state["generation"] and key in self.connections:
            return
        state["generation"] = generation
        conn = build_connection(body, self.kube.get_secret, poll_interval=self.poll_interval, coalesce_window=self.coalesce_window)
        self._replace_connection(key, conn)

    def _replace_connection(self, key: tuple[str, str], conn: Connection | None) -> None:
        old = self.connections.pop(key, None)
        task = self.sync_tasks.pop(key, None)
        if task:
            task.cancel()
        if old is not None:
            asyncio.create_task(old.close())
        if conn is not None:
            self.connections[key] = conn
            self.sync_tasks[key] = asyncio.create_task(self._sync_loop(conn), name=f"sync {key[0]}/{key[1]}")
        # Every job on this connection must look again, through the new client (or see it is gone).
        for jkey in list(self.by_connection.get(key, ())):
            rt = self.jobs.get(jkey)
            if rt is not None:
                rt.obs = None
                rt.need_fresh_after = time.monotonic()
                rt.changed.set()
                self._ensure_worker(rt)

    # --- the worker ------------------------------------------------------------------------

    def _ensure_worker(self, rt: JobRuntime) -> None:
        if self.closing or (rt.task is not None and not rt.task.done()):
            return
        rt.task = asyncio.create_task(self._run(rt), name=f"job {rt.namespace}/{rt.name}")

    async def _run(self, rt: JobRuntime) -> None:
        try:
            while True:
                rt.changed.clear()
                if rt.invalid is not None or rt.spec is None:
                    await self._write_invalid(rt)
                    if rt.changed.is_set():
                        continue  # fixed while the status was being written
                    return
                spec = rt.spec
                conn = self.connections.get((spec.namespace, spec.connection))
                obs = await self._observe(rt, conn, fresh=rt.obs is None)
                d = decide(spec, obs, rt.progress)
                if d.action is None and rt.obs_time < rt.need_fresh_after and not isinstance(obs, Failure):
                    obs = await self._observe(rt, conn, fresh=True)  # claim convergence on fresh data only
                    d = decide(spec, obs, rt.progress)
                if rt.changed.is_set():
                    continue
                self._publish(rt, spec, d, obs)
                if d.action is None:
                    if d.requeue_after is None:
                        return
                    if isinstance(obs, Failure):
                        rt.progress = read_failed(rt.progress)  # the next look backs off further
                    if not await self._sleep(rt, d.requeue_after):
                        rt.need_fresh_after = time.monotonic()
                        rt.obs = None
                    continue
                await self._act(rt, conn, spec, d.action, obs)
        except asyncio.CancelledError:
            # Shutting down (or the job is gone): let the last status write land. Only then: a worker
            # that ends normally must end at once, or a change arriving while it waited for its writes
            # (a slow or hung API server) would find it still busy and be lost until the next sync.
            if rt.writer is not None:
                with contextlib.suppress(Exception):
                    await asyncio.shield(rt.writer)
            raise
        except Exception:  # noqa: BLE001 - a bug must not kill the job's reconciliation for good
            rt.log.exception("unexpected error while reconciling; retrying in 10s")
            await asyncio.sleep(10)
            rt.task = None
            self._ensure_worker(rt)

    async def _observe(self, rt: JobRuntime, conn: Connection | None, *, fresh: bool) -> Observation:
        spec = rt.spec
        assert spec is not None
        if conn is None:
            conn = await self._read_through_connection(spec.namespace, spec.connection)
        if conn is None:
            return Failure(CONNECTION_NOT_FOUND, f"ElasticsearchConnection {spec.namespace}/{spec.connection} does not exist")
        if not fresh and rt.obs is not None:
            return rt.obs
        snap = await conn.snapshot(rt.need_fresh_after)
        rt.obs, rt.obs_time = snap.observe(spec.job_id), snap.started_at
        if not isinstance(rt.obs, Failure):
            rt.progress = read_succeeded(rt.progress)
        return rt.obs

    async def _read_through_connection(self, namespace: str, name: str) -> Connection | None:
        """A job names a connection the watch has not delivered (yet): ask the API server once."""
        try:
            body = await self.kube.get_connection(namespace, name)
        except Exception as e:  # noqa: BLE001
            log.warning("cannot read ElasticsearchConnection %s/%s: %s", namespace, name, e)
            return None
        if body is not None and (namespace, name) not in self.connections:
            self.on_connection_event(None, body)
        return self.connections.get((namespace, name))

    async def _sleep(self, rt: JobRuntime, seconds: float) -> bool:
        """Sleep, or return True early if the job changed."""
        with contextlib.suppress(asyncio.TimeoutError):
            await asyncio.wait_for(rt.changed.wait(), seconds)
            return True
        return False

    async def _interruptible(self, rt: JobRuntime, coro) -> tuple[bool, Any]:
        """Run ``coro`` unless the job changes first; then cancel it. Returns (completed, result)."""
        task = asyncio.ensure_future(coro)
        changed = asyncio.ensure_future(rt.changed.wait())
        try:
            await asyncio.wait({task, changed}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            changed.cancel()
        if task.done():
            return True, task.result()
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
        rt.log.info("spec changed while a call was in flight; the call was abandoned and the newest spec wins")
        return False, None

    # --- acting ------------------------------------------------------------------------------

    async def _act(self, rt: JobRuntime, conn: Connection | None, spec: JobSpec, action: Action, obs: Observation) -> None:
        if action.kind in ("add_finalizer", "remove_finalizer"):
            await self._set_finalizer(rt, action.kind == "add_finalizer")
            return
        assert conn is not None
        credentials = conn.fingerprint  # the client this call goes out with (see the 401 case below)
        if action.kind == "wait":
            done, res = await self._interruptible(rt, conn.wait_for(
                spec.job_id, lambda o: not (isinstance(o, JobObserved) and o.state == action.state), action.seconds))
            if done:
                rt.progress = advance(rt.progress, action, res if res is not None else obs)  # type: ignore[arg-type]
                if res is not None:
                    rt.obs, rt.obs_time = res, time.monotonic()
            return
        if action.kind == "stop":
            done, result = await self._interruptible(rt, self._stop(rt, conn, spec, obs))
        else:
            # start is abandoned on a change like stop; create/delete are short and run to the end
            call = self._call(rt, conn, spec, action)
            done, result = await (self._interruptible(rt, call) if action.kind == "start" else self._completed(call))
        if not done or result is None:
            return
        outcome, next_obs = result
        if isinstance(outcome, Failure) and outcome.kind == UNAUTHORIZED and await conn.credentials_rotated(credentials):
            # The Secret was rotated since the client was built: look again and retry with the new one
            # now, not at the next periodic sync.
            rt.log.info("%s of rollup job [%s] was refused (401); the connection's Secret changed, retrying", action.kind, spec.job_id)
            rt.obs = None
            rt.need_fresh_after = time.monotonic()
            return
        rt.progress = advance(rt.progress, action, outcome)
        if next_obs is None:
            next_obs = observation_after(action, outcome, obs)
        if next_obs is None:  # success: confirm with the connection's next shared read
            rt.obs = None
            rt.need_fresh_after = time.monotonic()
        else:
            rt.obs, rt.obs_time = next_obs, time.monotonic()
        if isinstance(outcome, Failure):
            rt.log.warning("%s of rollup job [%s] failed: %s", action.kind, spec.job_id, outcome.message)

    @staticmethod
    async def _completed(coro) -> tuple[bool, Any]:
        return True, await coro

    @staticmethod
    async def _gateway(conn: Connection) -> Gateway | Failure:
        """The connection's gateway, building the client first if it has none yet."""
        if conn.gateway is None:
            failure = await conn.ensure_client()
            if conn.gateway is None:
                return failure or Failure(CONNECTION_NOT_FOUND, "no client for the connection")
        return conn.gateway

    async def _call(self, rt: JobRuntime, conn: Connection, spec: JobSpec, action: Action):
        gw = await self._gateway(conn)
        if isinstance(gw, Failure):
            return gw, None
        async with conn.slots:
            if rt.spec is not spec:
                return None  # the spec moved on while we queued: decide again
            rt.log.info("%s rollup job [%s]", action.kind, spec.job_id)
            if action.kind == "start":
                out = await gw.start(spec.job_id)
            elif action.kind == "create":
                out = await gw.create(spec.job_id, spec.config or {})
            elif action.kind == "delete":
                out = await gw.delete(spec.job_id)
            else:  # pragma: no cover
                raise ValueError(action.kind)
        return out, None

    async def _stop(self, rt: JobRuntime, conn: Connection, spec: JobSpec, obs: Observation):
        gw = await self._gateway(conn)
        if isinstance(gw, Failure):
            return gw, None
        assert conn.spec is not None
        # After a timeout the stop is re-sent at once because the server has just waited
        # `stop.timeout`; a timeout shorter than the poll interval (the schema accepts "1ms") would
        # make that a tight loop, so retries of one job's stop are at least a poll interval apart.
        if isinstance(rt.progress.last_outcome, StopTimedOut) and rt.last_stop_sent is not None:
            gap = self.poll_interval - (time.monotonic() - rt.last_stop_sent)
            if gap > 0:
                await asyncio.sleep(gap)  # a spec change cancels this wait (_interruptible)
        t0 = time.monotonic()
        rt.last_stop_sent = t0
        rt.stop_started = rt.stop_started or t0
        rt.progress = replace(rt.progress, last_stop_at=now_iso())
        # Server-side wait while a waiting slot is free; else a quick stop and the shared poll.
        wait = spec.wait_for_completion and not conn.wait_slots.locked()
        async with (conn.wait_slots if wait else contextlib.nullcontext()), conn.slots:
            if rt.spec is not spec:
                return None
            rt.log.info("stop rollup job [%s] (%s)", spec.job_id,
                        f"wait_for_completion, timeout {spec.stop_timeout}" if wait else "server does not wait; confirming by shared reads")
            out = await gw.stop(spec.job_id, wait=wait, timeout=spec.stop_timeout,
                                timeout_s=spec.stop_timeout_s, request_timeout=conn.spec.request_timeout_s)
        next_obs = None
        if not wait and isinstance(out, Done):
            left = max(0.0, spec.stop_timeout_s - (time.monotonic() - t0))
            res = await conn.wait_for(
                spec.job_id, lambda o: not (isinstance(o, JobObserved) and o.state in (STARTED, INDEXING, STOPPING)), left)
            if res is None:
                seen = conn.snapshot_.observe(spec.job_id) if conn.snapshot_ else obs
                out = StopTimedOut(seen.state if isinstance(seen, JobObserved) else STOPPING)
            else:
                next_obs = res
        if isinstance(out, StopTimedOut):
            metrics.STOP_TIMEOUTS.inc()
            rt.log.info("stop of rollup job [%s] timed out after %s (state %s); retrying", spec.job_id, spec.stop_timeout, out.state)
        return out, next_obs

    async def _set_finalizer(self, rt: JobRuntime, present: bool) -> None:
        fins = [f for f in rt.finalizers if f != FINALIZER] + ([FINALIZER] if present else [])
        try:
            obj = await self.kube.set_finalizers(rt.namespace, rt.name, fins, str(rt.rv) if rt.rv else None)
        except KubeError as e:
            if e.status == 409:  # the object moved on; its newer version is on its way through the watch
                await self._sleep(rt, 1.0)
                return
            rt.log.error("cannot update finalizers: %s", e)
            await self._sleep(rt, 10.0)
            return
        if obj is not None:
            self.on_job_event("MODIFIED", obj)

    # --- status and events ------------------------------------------------------------------

    def _publish(self, rt: JobRuntime, spec: JobSpec, d: Decision, obs: Observation) -> None:
        metrics.RECONCILES.labels(result=d.verdict.phase).inc()
        wanted = job_status(spec, d.verdict, obs, rt.progress, rt.status, now_iso())
        event = transition_event(rt.status, spec, d.verdict, rt.progress)
        if d.verdict.phase == READY and d.verdict.reason == "Stopped" and rt.stop_started is not None:
            metrics.STOP_DURATION.observe(time.monotonic() - rt.stop_started)
            rt.stop_started = None
        patch = status_patch(rt.status, wanted)
        if patch is None and event is None:
            return
        rt.status = apply_patch(rt.status, patch or {})  # what the stored status will be once it lands
        self.status_writer.enqueue(rt, patch, event)

    async def _write_invalid(self, rt: JobRuntime) -> None:
        wanted = invalid_status(rt.generation, rt.invalid or "invalid spec", rt.status, now_iso())
        metrics.RECONCILES.labels(result="InvalidSpec").inc()
        patch = status_patch(rt.status, wanted)
        if patch is None:
            return
        prev_reason = (cond.get(rt.status.get("conditions"), cond.READY) or {}).get("reason")
        rt.status = apply_patch(rt.status, patch)
        event = ("Warning", "InvalidSpec", rt.invalid or "") if prev_reason != "InvalidSpec" else None
        self.status_writer.enqueue(rt, patch, event)

    # --- periodic sync per connection -------------------------------------------------------

    async def _sync_loop(self, conn: Connection) -> None:
        key = (conn.namespace, conn.name)
        while True:
            try:
                await conn.ensure_client(reread_secrets=True)
                snap = await conn.snapshot(time.monotonic()) if not conn.invalid else Snapshot(time.monotonic(), failure=conn.failure)
                await self._write_connection_status(conn, snap)
                self._warn_insecure_transport(conn)
                self._apply_snapshot(key, snap)
            except asyncio.CancelledError:
                raise
            except Exception:  # noqa: BLE001
                log.exception("sync of connection %s/%s failed", *key)
            interval = conn.spec.sync_interval_s if conn.spec else 60.0
            await asyncio.sleep(interval)

    def _apply_snapshot(self, key: tuple[str, str], snap: Snapshot) -> None:
        """Give every idle job on the connection the new observation; wake those that need a pass."""
        for jkey in list(self.by_connection.get(key, ())):
            rt = self.jobs.get(jkey)
            if rt is None or rt.spec is None or (rt.task is not None and not rt.task.done()):
                continue
            obs = snap.observe(rt.spec.job_id)
            if obs == rt.obs and isinstance(obs, JobObserved) and obs.stats == getattr(rt.obs, "stats", None):
                rt.obs_time = snap.started_at
                continue
            rt.obs, rt.obs_time = obs, snap.started_at
            d = decide(rt.spec, obs, rt.progress)
            wanted = job_status(rt.spec, d.verdict, obs, rt.progress, rt.status, now_iso())
            if d.action is not None or status_patch(rt.status, wanted) is not None:
                self._ensure_worker(rt)

    def _warn_insecure_transport(self, conn: Connection) -> None:
        """One Warning Event per connection generation whose credentials go over plain http://."""
        state = self.conn_state.get((conn.namespace, conn.name))
        warning = credentials.insecure_transport_warning(conn.spec)
        if warning is None or state is None or conn.client is None or getattr(conn, "insecure_warned", False):
            return
        conn.insecure_warned = True  # type: ignore[attr-defined]
        ref = {"kind": CONNECTION_KIND, "namespace": conn.namespace, "name": conn.name, "uid": state.get("uid")}
        name = credentials.insecure_event_name(conn.name, state.get("uid"), state.get("generation"))
        asyncio.create_task(self.kube.event(ref, "Warning", credentials.INSECURE_TRANSPORT, warning, name=name))

    async def _write_connection_status(self, conn: Connection, snap: Snapshot) -> None:
        state = self.conn_state.get((conn.namespace, conn.name))
        if state is None:
            return
        failure = conn.failure or snap.failure
        info = conn.info
        wanted = connection_status(
            int(state["generation"] or 0), failure,
            info.version if info else None,
            info.deprecated if info else None,
            info.usage_rule if info else None,
            conn.gateway.deprecation_warning if conn.gateway else None,
            len(snap.jobs) if snap.failure is None else None,
            state["status"], now_iso(),
        )
        patch = status_patch(state["status"], wanted)
        if patch is None:
            return
        previous = state["status"]
        prev_ready = cond.get(state["status"].get("conditions"), cond.READY) or {}
        new_ready = wanted["conditions"][0]
        state["status"] = apply_patch(state["status"], patch)
        ref = {"kind": CONNECTION_KIND, "namespace": conn.namespace, "name": conn.name}
        if prev_ready.get("reason") != new_ready["reason"]:
            type_ = "Normal" if new_ready["status"] == "True" else "Warning"
            asyncio.create_task(self.kube.event(ref, type_, new_ready["reason"], new_ready["message"]))
        try:
            await self.kube.patch_connection_status(conn.namespace, conn.name, patch)
        except Exception as e:  # noqa: BLE001
            log.error("cannot write status of connection %s/%s: %s", conn.namespace, conn.name, e)
            state["status"] = previous  # not written: the next sync computes the patch again

    # --- shutdown --------------------------------------------------------------------------

    async def close(self) -> None:
        self.closing = True
        tasks = [rt.task for rt in self.jobs.values() if rt.task] + list(self.sync_tasks.values())
        for t in tasks:
            t.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        await asyncio.gather(*(c.close() for c in self.connections.values()), return_exceptions=True)
