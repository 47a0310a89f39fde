"""The operator's assembly: watch events in, the store, the work queue, passes and syncs out.

kopf's watch feeds ``on_job_event`` / ``on_connection_event`` (handlers.py). Each event goes into
the store (job/store.py); a job that needs a pass, and every other job whose owner the event changed
(``Store.owners_changed``), is added to the work queue (job/workqueue.py), which runs the
reconciler's passes (job/reconcile.py), one per job at a time; each connection has its client
(engine/connection.py) and a periodic sync (connection_sync.py). Statuses of both kinds go through
the one status writer (kube/status_writer.py).

``close(drain=True)`` is a graceful stop (SIGTERM): passes and syncs are cancelled, the status
writes already queued land. ``close(drain=False)`` sends nothing more: queued and in-flight writes
are cancelled too (the operator lost its lease).
"""

from __future__ import annotations

import asyncio
import logging
import time
from typing import Any, Callable

from elasticsearch import AsyncElasticsearch

from rollup_operator import metrics
from rollup_operator.engine import dialect
from rollup_operator.engine.connection import Connection, build as build_connection
from rollup_operator.engine.dialect import RollupDialect
from rollup_operator.kube.client import Kube
from rollup_operator.job.reconcile import Reconciler
from rollup_operator.kube.status_writer import StatusWriter
from rollup_operator.job.spec import Key, key_of
from rollup_operator.job.store import Store
from rollup_operator.app.connection_sync import sync_loop
from rollup_operator.job.workqueue import WorkQueue

log = logging.getLogger("rollup_operator")


class Controller:
    def __init__(self, kube: Kube, *, poll_interval: float = 1.0, coalesce_window: float = 0.05,
                 dialects: Callable[[AsyncElasticsearch, str], RollupDialect] = dialect.build):
        self.kube = kube
        self.dialects = dialects  # the rollup API each connection gets (an in-memory fake in tests)
        self.poll_interval = poll_interval
        self.coalesce_window = coalesce_window
        self.closing = False
        self.store = Store()
        self.writer = StatusWriter(kube, lambda: self.closing)
        self.reconciler = Reconciler(self.store, self.writer, kube, self.connection, poll_interval=poll_interval)
        self.queue: WorkQueue[Key] = WorkQueue(self.reconciler.reconcile)
        self.sync_tasks: dict[Key, asyncio.Task[None]] = {}

    # --- input: watch events -------------------------------------------------------------------

    def on_job_event(self, etype: str | None, body: dict[str, Any]) -> None:
        if etype == "DELETED":
            key = key_of(body)
            if self.store.delete_job(key) is not None:
                self.queue.cancel(key)
        else:
            entry = self.store.put_job(body, time.monotonic())
            if entry is not None and not self.closing:
                self.queue.add(entry.key)
        self._wake_claimants()

    def _wake_claimants(self) -> None:
        """A claim appeared, went or moved: every other RollupJob naming that job id whose owner
        changed (ownership.py) gets a pass; a call it has in flight is abandoned (superseded)."""
        woken = self.store.owners_changed()
        if not self.closing:
            for key in woken:
                self.queue.add(key)

    def _clusters_changed(self, key: Key, conn: Connection) -> None:
        entry = self.store.connections.get(key)
        if entry is not None and entry.conn is conn:
            self.store.set_clusters(key, conn.clusters)
            self._wake_claimants()

    def on_connection_event(self, etype: str | None, body: dict[str, Any]) -> None:
        key = key_of(body)
        if etype == "DELETED":
            self._replace_connection(key, None)
            self.store.put_connection(body, deleted=True)
            metrics.CONNECTION_UP.remove(*key)  # a deleted connection is not down (RollupConnectionDown)
            return
        entry, rebuild = self.store.put_connection(body)
        if entry is None or not rebuild:
            return
        conn = build_connection(body, self.kube.get_secret, poll_interval=self.poll_interval, coalesce_window=self.coalesce_window,
                                dialects=self.dialects)
        self._replace_connection(key, conn)

    def _replace_connection(self, key: Key, conn: Connection | None) -> None:
        entry = self.store.connections.get(key)
        old = None
        if entry is not None:
            old, entry.conn = entry.conn, conn
        task = self.sync_tasks.pop(key, None)
        if task:
            task.cancel()
        if old is not None:
            old.on_clusters = None
            asyncio.create_task(old.close())
        if conn is not None:
            conn.on_clusters = lambda: self._clusters_changed(key, conn)
        self.store.set_clusters(key, conn.clusters if conn is not None and entry is not None else None)
        self._wake_claimants()
        if conn is not None and entry is not None and not self.closing:
            self.sync_tasks[key] = asyncio.create_task(sync_loop(entry, conn, self.store, self.queue, self.writer), name=f"sync {key[0]}/{key[1]}")
        # Every job on this connection must look again, through the new client (or see it is gone).
        now = time.monotonic()
        for job in self.store.jobs_on(key):
            job.forget_observation(now)
            self.queue.add(job.key)

    async def connection(self, namespace: str, name: str) -> Connection | None:
        """The connection a job names; one the watch has not delivered (yet) is read once."""
        entry = self.store.connections.get((namespace, name))
        if entry is not None and entry.conn is not None:
            return entry.conn
        try:
            body = await self.kube.get_connection(namespace, name)
        except Exception as e:  # noqa: BLE001
            log.warning("cannot read ElasticsearchConnection %s/%s: %s", namespace, name, e)
            return None
        entry = self.store.connections.get((namespace, name))
        if body is not None and (entry is None or entry.conn is None):
            self.on_connection_event(None, body)
        entry = self.store.connections.get((namespace, name))
        return entry.conn if entry is not None else None

    # --- shutdown --------------------------------------------------------------------------

    async def close(self, *, drain: bool = True) -> None:
        """Stop every pass and sync. ``drain``: let the queued status writes land; else cancel them."""
        self.closing = True
        self.writer.frozen = self.writer.frozen or not drain  # once frozen (run cancelled), never thawed
        for t in self.sync_tasks.values():
            t.cancel()
        await self.queue.shutdown()
        await asyncio.gather(*self.sync_tasks.values(), return_exceptions=True)
        if drain:
            await self.writer.drain()
        else:
            await self.writer.abort()
        conns = [e.conn for e in self.store.connections.values() if e.conn is not None]
        await asyncio.gather(*(c.close() for c in conns), return_exceptions=True)
