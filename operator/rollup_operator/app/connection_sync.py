"""The periodic sync of one connection: read all its jobs, publish its status, wake changed jobs.

Every ``syncInterval`` the connection re-reads its Secrets (rebuilding the client if one changed)
and reads ``GET _rollup/job/_all`` once. The connection's status is rebuilt from that and written
through the one status writer (only when it differs; an event when its Ready reason changes). Each
idle job on the connection whose server job looks different from what the store holds gets the
new observation and is added to the work queue; nothing is decided here.
"""

from __future__ import annotations

import asyncio
import logging
import time

from rollup_operator.engine import credentials
from rollup_operator.engine.connection import Connection
from rollup_operator.job.observations import JobObserved
from rollup_operator.engine.shared_reads import Snapshot
from rollup_operator.job import retry
from rollup_operator.timefmt import rfc3339
from rollup_operator.job.reconcile import announcing
from rollup_operator.job.status import awaits_first_answer, connection_connecting_status, connection_status, ready_reason
from rollup_operator.kube.status_writer import StatusWriter
from rollup_operator.job.spec import Key
from rollup_operator.job.store import ConnectionEntry, Store
from rollup_operator.job.workqueue import WorkQueue

log = logging.getLogger("rollup_operator")


async def sync_loop(entry: ConnectionEntry, conn: Connection, store: Store, queue: WorkQueue[Key], writer: StatusWriter) -> None:
    while True:
        try:
            await sync_once(entry, conn, store, queue, writer)
        except asyncio.CancelledError:
            raise
        except Exception:  # noqa: BLE001
            log.exception("sync of connection %s/%s failed", entry.namespace, entry.name)
        await asyncio.sleep(conn.spec.sync_interval_s if conn.spec else 60.0)


async def sync_once(entry: ConnectionEntry, conn: Connection, store: Store, queue: WorkQueue[Key], writer: StatusWriter) -> None:
    generation = int(entry.generation or 0)

    def connecting() -> None:
        writer.publish(entry, connection_connecting_status(generation, conn.awaiting(), entry.status, rfc3339()))
    snap = await announcing(_read(conn), retry.SLOW_ANSWER_S, connecting if awaits_first_answer(entry.status, generation) else None)
    publish_connection_status(entry, conn, snap, writer)
    wake_changed_jobs(entry.key, snap, store, queue)
    await warn_insecure_transport(entry, conn, writer)


async def _read(conn: Connection) -> Snapshot:
    await conn.ensure_client(reread_secrets=True)
    return await conn.reads.snapshot(time.monotonic()) if not conn.invalid else Snapshot(time.monotonic(), failure=conn.failure)


async def warn_insecure_transport(entry: ConnectionEntry, conn: Connection, writer: StatusWriter) -> None:
    """One Warning Event per connection generation whose credentials go over plain http://; its
    fixed name (credentials.insecure_event_name) keeps a restart from repeating it."""
    warning = credentials.insecure_transport_warning(conn.spec)
    if warning is None or conn.client is None or conn.insecure_warned:
        return
    conn.insecure_warned = True
    ref = {**entry.ref, "uid": entry.uid}
    name = credentials.insecure_event_name(conn.name, entry.uid, entry.generation)
    await writer.kube.event_once(ref, "Warning", credentials.INSECURE_TRANSPORT, warning, name=name)


def wake_changed_jobs(key: Key, snap: Snapshot, store: Store, queue: WorkQueue[Key]) -> None:
    """Give every idle job on the connection the new observation; queue those it changed. (The
    one writer of a job's cached observation besides its pass; never of its progress.)"""
    for job in store.jobs_on(key):
        if job.spec is None or queue.busy(job.key) or queue.pending(job.key):
            continue  # a job in a pass (or waiting to look again) makes its own reads
        obs = snap.observe(job.spec.job_id)
        if obs == job.obs and isinstance(obs, JobObserved) and obs.stats == getattr(job.obs, "stats", None) \
                and obs.config == getattr(job.obs, "config", None):  # a config changed on the server (OpenSearch can) wakes it
            job.obs_time = snap.started_at
            continue
        job.obs, job.obs_time = obs, snap.started_at
        queue.add(job.key)


def publish_connection_status(entry: ConnectionEntry, conn: Connection, snap: Snapshot, writer: StatusWriter) -> None:
    failure = conn.failure or snap.failure
    info = conn.info
    wanted = connection_status(
        int(entry.generation or 0), failure,
        info.version if info else None,
        info.deprecated if info else None,
        info.usage_rule if info else None,
        conn.gateway.deprecation_warning if conn.gateway else None,
        len(snap.jobs) if snap.failure is None else None,
        entry.status, rfc3339(), engine=conn.engine,
    )
    new_ready = wanted["conditions"][0]
    event = None
    if ready_reason(entry.status) != new_ready["reason"]:
        event = ("Normal" if new_ready["status"] == "True" else "Warning", new_ready["reason"], new_ready["message"])
    writer.publish(entry, wanted, event)  # written only if it differs
