"""RollupMigrations carried out: one task per migration, woken by its watch events and by its poll.

A pass reads the world the decision asks for (phases.decide), acts, and writes the status when it
changed (status.build), with an Event on each transition. Every pass starts from the stored status
and what the servers say, so a restart or a failover resumes where the last one stopped; actions are
idempotent (PUT of owned bodies, a rollover only while the write index lacks the policy, a stop
through the RollupJob's desiredState). Deleting a migration before its cut-over leaves the rollup job
as it was; under ``cleanupPolicy: Delete`` the finalizer removes the template and policy it created.
"""

from __future__ import annotations

import asyncio
import logging
import os
import time
from dataclasses import replace
from typing import Any, Awaitable, Callable, Mapping

from rollup_operator.engine.connection import Connection
from rollup_operator.engine.dialect import OPENSEARCH
from rollup_operator.engine.elasticsearch.rollup_api import classify
from rollup_operator.job.ownership import Ownership
from rollup_operator.job.spec import API_VERSION
from rollup_operator.kube.client import Kube, KubeError
from rollup_operator.timefmt import rfc3339
from rollup_operator.migration import engine, kube_io, metrics as mmetrics, phases, status as mstatus, steps
from rollup_operator.migration.spec import FINALIZER, MIGRATION_KIND, MigrationSpec, migration_spec, spec_problem

log = logging.getLogger("rollup_operator")
Key = tuple[str, str]
ConnectionOf = Callable[[str, str], Awaitable[Connection | None]]
#: Which RollupJob owns a job id on a cluster (store.Store.owner_of).
OwnerOf = Callable[[str, frozenset[str]], Ownership]


def poll_seconds() -> float:
    try:
        return max(0.2, float(os.environ.get("ROLLUP_MIGRATION_POLL_SECONDS", "15")))
    except ValueError:
        return 15.0


def _wake_key(body: Mapping[str, Any]) -> tuple[Any, ...]:
    meta = body.get("metadata") or {}
    return (meta.get("generation"), tuple(sorted((meta.get("annotations") or {}).items())), meta.get("deletionTimestamp"),
            tuple(meta.get("finalizers") or ()))


class Migrations:
    def __init__(self, kube: Kube, connection_of: ConnectionOf, owner_of: OwnerOf, *, poll: float | None = None):
        self.kube = kube
        self.connection_of = connection_of
        self.owner_of = owner_of
        self.poll = poll if poll is not None else poll_seconds()
        self.bodies: dict[Key, dict[str, Any]] = {}
        self.seen: dict[Key, tuple[Any, ...]] = {}
        self.wakes: dict[Key, asyncio.Event] = {}
        self.tasks: dict[Key, asyncio.Task[None]] = {}
        self.closing = False
        #: per migration: (the phase being worked on, state, since) for the metrics (migration/metrics.py)
        self.records: dict[Key, tuple[str, str, float]] = {}
        self.unchanged: set[Key] = set()  # the last pass wrote nothing (it saw what the one before saw)
        self.passed: set[Key] = set()  # had a pass in this process
        mmetrics.track(self)

    def on_event(self, etype: str | None, body: dict[str, Any]) -> None:
        meta = body.get("metadata") or {}
        key = (meta.get("namespace", ""), meta.get("name", ""))
        if etype == "DELETED":
            task = self.tasks.pop(key, None)
            if task:
                task.cancel()
            self.bodies.pop(key, None)
            self.records.pop(key, None)
            self.unchanged.discard(key)
            self.passed.discard(key)
            self.seen.pop(key, None)
            self.wakes.pop(key, None)
            return
        self.bodies[key] = body
        wk = _wake_key(body)
        if self.seen.get(key) != wk:
            self.seen[key] = wk
            self.wakes.setdefault(key, asyncio.Event()).set()
        if key not in self.tasks and not self.closing:
            self.wakes.setdefault(key, asyncio.Event()).set()
            self.tasks[key] = asyncio.create_task(self._loop(key), name=f"migration {key[0]}/{key[1]}")

    async def close(self) -> None:
        self.closing = True
        for t in self.tasks.values():
            t.cancel()
        await asyncio.gather(*self.tasks.values(), return_exceptions=True)

    async def _loop(self, key: Key) -> None:
        wake = self.wakes[key]
        quiet = 0  # polls in a row that changed nothing: the next one waits twice as long (up to 20 periods)
        while True:
            await wake.wait()
            wake.clear()
            body = self.bodies.get(key)
            if body is None:
                return
            try:
                poll = await self.reconcile(body)
            except asyncio.CancelledError:
                raise
            except Exception:  # noqa: BLE001 - one migration's bug never stops the others
                log.exception("migration %s/%s: pass failed", *key)
                poll = True
            quiet = quiet + 1 if key in self.unchanged else 0
            if poll:
                try:
                    await asyncio.wait_for(wake.wait(), min(self.poll * 2 ** min(quiet, 8), self.poll * 20))
                except asyncio.TimeoutError:
                    wake.set()

    # --- one pass ------------------------------------------------------------------------------

    async def reconcile(self, body: Mapping[str, Any]) -> bool:
        """One pass; returns whether to look again after the poll period."""
        spec = migration_spec(body)
        prev = dict(body.get("status") or {})
        if spec.deleting:
            await self._finalize(spec, prev)
            return False
        if prev.get("phase") == "CutOver" and prev.get("observedGeneration") == spec.generation:
            self.records.setdefault((spec.namespace, spec.name), ("CutOver", phases.READY, time.time()))
            return False  # done; nothing more to do or to write
        extra: dict[str, Any] = {}
        try:
            d, es_extra = await self._decide(spec, prev)
            extra.update(es_extra)
        except KubeError as e:
            d = phases.Decision(prev.get("phase") if prev.get("phase") in phases.PHASES else None, phases.RECONCILING,
                                "KubernetesError", f"Kubernetes API: {e}", poll=True, plan=prev.get("plan"))
        except Exception as e:  # noqa: BLE001 - an Elasticsearch answer or an unreachable server
            d = phases.Decision(prev.get("phase") if prev.get("phase") in phases.PHASES else None, phases.RECONCILING,
                                "ElasticsearchError", _message(e), poll=True, plan=prev.get("plan"))
        for k in ("jobId", "connection", "serverVersion", "created", "coverage", "verification", "cutOver"):
            if k not in extra and k in prev:
                extra[k] = prev[k]
        now = rfc3339(time.time())
        new = mstatus.build(spec.generation, d, prev, now, **extra)
        key = (spec.namespace, spec.name)
        if _differs(prev, new):
            self.unchanged.discard(key)
            await kube_io.apply_status(self.kube, spec.namespace, spec.name, new)
        else:
            self.unchanged.add(key)
        self._record(spec, new, d)
        # The Events follow the status they describe; a process killed in between would lose them. The
        # first pass of a process posts those of every phase reached again: their names are fixed
        # (one per migration and phase, or per generation and stop), so an Event already posted is a 409.
        first = key not in self.passed
        self.passed.add(key)
        for ev in mstatus.transitions({} if first else prev, new, d):
            await self._event(spec, ev)
        return d.poll

    def _record(self, spec: MigrationSpec, status: Mapping[str, Any], d: phases.Decision) -> None:
        working = next((p["name"] for p in status.get("phases") or [] if p.get("status") != "True"), "CutOver")
        key = (spec.namespace, spec.name)
        old = self.records.get(key)
        since = old[2] if old is not None and old[0] == working else time.time()
        self.records[key] = (working, d.state, since)

    async def _decide(self, spec: MigrationSpec, prev: Mapping[str, Any]) -> tuple[phases.Decision, dict[str, Any]]:
        extra: dict[str, Any] = {}
        problem = spec_problem(spec)
        if problem is not None:  # refused before any request (the CRD refuses it at admission)
            return phases.Decision(None, phases.STALLED, "InvalidSpec", problem, poll=False), extra
        reached = phases.PHASES.index(prev["phase"]) if prev.get("phase") in phases.PHASES else -1
        rj: dict[str, Any] | None = None
        if spec.job_ref:
            rj = await kube_io.get_rollupjob(self.kube, spec.namespace, spec.job_ref)
            if rj:
                conn_name = ((rj.get("spec") or {}).get("connectionRef") or {}).get("name")
                job_id = (rj.get("spec") or {}).get("jobId") or spec.job_ref
            else:
                conn_name, job_id = prev.get("connection"), prev.get("jobId")
                if not (conn_name and job_id):
                    return phases.Decision(None, phases.STALLED, "RollupJobNotFound",
                                           f"RollupJob {spec.namespace}/{spec.job_ref} does not exist", poll=True), extra
        else:
            conn_name, job_id = spec.connection_ref, spec.job_id
        extra.update(jobId=job_id, connection=conn_name)
        conn = await self.connection_of(spec.namespace, str(conn_name))
        if conn is None:
            return phases.Decision(None, phases.STALLED, "ConnectionNotFound",
                                   f"ElasticsearchConnection {spec.namespace}/{conn_name} does not exist", poll=True), extra
        failure = await conn.ensure_client()
        if conn.client is None:
            msg = failure.message if failure else "no client yet"
            return phases.Decision(None, phases.RECONCILING, "ConnectionUnavailable", msg, poll=True), extra
        if conn.engine == OPENSEARCH:
            return phases.Decision(None, phases.STALLED, "UnsupportedEngine",
                                   f"ElasticsearchConnection {spec.namespace}/{conn_name} reaches OpenSearch: downsampling "
                                   "(time series data streams, ILM's downsample action) is Elasticsearch's; an OpenSearch "
                                   "rollup job has no RollupMigration", poll=True), extra
        # A migration acts on the server job itself (stop, delete) only when no RollupJob manages it, or
        # when it is the RollupJob it names: a RollupJob's job, in this namespace or another, is not
        # reachable through a RollupMigration that does not name that RollupJob. This holds after the
        # cut-over too: a cut-over migration goes on keeping its job stopped (or deleted), so a RollupJob
        # that names the job afterwards makes it Stalled rather than overruled.
        own = self.owner_of(str(job_id), conn.clusters or frozenset())
        mine = (spec.namespace, spec.job_ref) if spec.job_ref else None
        if own.owner is not None and own.owner != mine:
            if not own.certain:
                return phases.Decision(None, phases.RECONCILING, "CheckingOwnership",
                                       f"waiting to learn which cluster each RollupJob naming rollup job [{job_id}] is on", poll=True), extra
            who = f"RollupJob {own.owner[0]}/{own.owner[1]}" if own.owner[0] == spec.namespace else "a RollupJob in another namespace"
            hint = " (name it in spec.jobRef)" if own.owner[0] == spec.namespace else ""
            return phases.Decision(None, phases.STALLED, "JobManagedElsewhere",
                                   f"rollup job [{job_id}] on this cluster is managed by {who}; a RollupMigration moves such a job "
                                   f"only through the RollupJob that manages it{hint}", poll=True), extra
        es = conn.client
        if conn.info is not None and conn.info.version:
            extra["serverVersion"] = conn.info.version
        o = phases.Observed(
            frozen_plan=prev.get("plan") if reached >= phases.PHASES.index("Provisioned") else None,
            verified=prev.get("verification") if reached >= phases.PHASES.index("Verified") else None,
            coverage=prev.get("coverage") if reached >= phases.PHASES.index("Verified") else None,
            rollupjob=rj,
            trust_provisioned=reached >= phases.PHASES.index("Provisioned") and prev.get("observedGeneration") == spec.generation)
        created = list(prev.get("created") or [])
        for _ in range(24):
            d = phases.decide(spec, o)
            if d.observe:
                async with conn.slots:  # the connection's spec.maxConcurrentRequests, shared with its jobs
                    o = await steps.observe(self.kube, d.observe, es, conn, spec, str(job_id), d.plan, o, extra)
            elif d.actions:
                for action, arg in d.actions:
                    async with conn.slots:
                        what = await steps.act(self.kube, action, arg, es, spec, str(job_id), d.plan)
                    if what and not any(f"{c.get('kind')}/{c.get('name')}" == what for c in created):
                        kind, _, name = what.partition("/")
                        created.append({"kind": kind, "name": name})
                provisioned = any(a in ("put_policy", "put_template", "create_data_stream", "rollover") for a, _ in d.actions)
                o = replace(o, job=None, provisioning=None if provisioned else o.provisioning,
                            rollupjob=None if spec.job_ref else o.rollupjob)
                if any(a == "add_finalizer" for a, _ in d.actions):
                    spec = replace(spec, finalizers=(*spec.finalizers, FINALIZER))
            else:
                break
        extra["created"] = created or None
        return d, extra

    async def _finalize(self, spec: MigrationSpec, prev: Mapping[str, Any]) -> None:
        if FINALIZER not in spec.finalizers:
            return
        if spec.cleanup == "Delete" and prev.get("phase") != "CutOver" and prev.get("plan"):
            conn = await self.connection_of(spec.namespace, str(prev.get("connection")))
            if conn is not None and (await conn.ensure_client()) is None and conn.client is not None:
                try:
                    for note in await engine.remove_created(conn.client, prev["plan"]["resourceName"], spec.uid):
                        await self._event(spec, ("Warning", "CleanupIncomplete", note))
                except Exception as e:  # noqa: BLE001
                    log.warning("migration %s: cleanup failed: %s", spec.ref, e)
                    return  # the finalizer stays; the next event or poll retries
        await kube_io.set_finalizers(self.kube, spec.namespace, spec.name, [f for f in spec.finalizers if f != FINALIZER])

    async def _event(self, spec: MigrationSpec, ev: mstatus.Event) -> None:
        type_, reason, message = ev
        once = reason in phases.PHASES  # a phase is reached once per migration; a stop once per generation
        name = f"{spec.name[:200]}.{spec.uid[:8]}.{reason.lower()}" + ("" if once else f".{spec.generation}")
        ref = {"namespace": spec.namespace, "name": spec.name, "uid": spec.uid, "kind": MIGRATION_KIND, "apiVersion": API_VERSION}
        await self.kube.event_once(ref, type_, reason, message, name=name)


def _differs(prev: Mapping[str, Any], new: Mapping[str, Any]) -> bool:
    return dict(prev) != dict(new)


def _message(e: BaseException) -> str:
    """What went wrong with a call to Elasticsearch, as the job controller words it (redacted)."""
    try:
        out = classify(e, "migration")
    except Exception:  # noqa: BLE001 - not a client error: a bug, logged with its trace
        log.exception("migration pass failed")
        return f"internal error: {type(e).__name__}"
    return str(getattr(out, "message", out))[:4096]
