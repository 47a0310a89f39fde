"""One pooled Elasticsearch client per ``ElasticsearchConnection``, and the shared reads through it.

A connection owns:

* its client, built from the spec and its Secrets, rebuilt when either changes (Secrets are
  re-read on every periodic sync and at once when the server answers 401, so a rotated password
  is picked up without a restart);
* the *snapshot*: the result of ``GET _rollup/job/_all``. Jobs never read one by one: a job
  that needs a fresh look asks for "a snapshot taken after time t", and every job asking at the
  same moment shares one request (``snapshot``);
* a *poller* that, while some job waits for a state change (a stop without server-side wait,
  a start that waits for a stop to finish), reads the snapshot once per ``poll_interval`` for all
  of them together (``wait_for``);
* the concurrency gates: ``slots`` bounds all requests in flight on this connection, and
  ``wait_slots`` bounds how many stop calls may hold a connection open while the server waits.

Knows nothing of RollupJob resources beyond job ids.
"""

from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import dataclass, field
from typing import Callable

from elasticsearch import AsyncElasticsearch

from . import credentials, metrics
from .gateway import Gateway
from .model import ConnectionSpec, InvalidSpec, connection_spec_from_body
from .observations import (
    FORBIDDEN,
    INVALID_CONNECTION,
    UNAUTHORIZED,
    UNEXPECTED_RESPONSE,
    UNSUPPORTED_VERSION,
    Failure,
    JobAbsent,
    JobObserved,
    Observation,
)

log = logging.getLogger(__name__)

SecretReader = credentials.SecretGetter  # (namespace, name) -> the Secret object, or None


@dataclass
class Snapshot:
    started_at: float  # monotonic time the read was sent
    jobs: dict[str, JobObserved | Failure] = field(default_factory=dict)  # a Failure: that entry was malformed (answers.py)
    failure: Failure | None = None

    def observe(self, job_id: str) -> Observation:
        if self.failure is not None:
            return self.failure
        return self.jobs.get(job_id) or JobAbsent()


@dataclass(frozen=True)
class ServerInfo:
    version: str | None  # None: GET / was forbidden (a user without the monitor privilege)
    deprecated: bool | None  # rollups deprecated on this version (8.11+)
    usage_rule: bool | None  # new jobs need existing rollup usage (8.15+)


def _version_tuple(v: str) -> tuple[int, int]:
    parts = (v.split("-")[0].split(".") + ["0", "0"])[:2]
    try:
        return int(parts[0]), int(parts[1])
    except ValueError:
        return (0, 0)


class Connection:
    def __init__(self, namespace: str, name: str, spec: ConnectionSpec | None, invalid: str | None,
                 read_secret: SecretReader, *, poll_interval: float = 1.0, coalesce_window: float = 0.05):
        self.namespace, self.name = namespace, name
        self.spec = spec
        self.invalid = invalid
        self._read_secret = read_secret
        self.poll_interval = poll_interval
        self.coalesce_window = coalesce_window
        self.client: AsyncElasticsearch | None = None
        self.gateway: Gateway | None = None
        self.info: ServerInfo | None = None
        self.failure: Failure | None = Failure(INVALID_CONNECTION, invalid) if invalid else None
        self._fingerprint: str | None = None
        self._build_lock = asyncio.Lock()
        n = spec.max_concurrent_requests if spec else 1
        self.slots = asyncio.Semaphore(n)
        self.wait_slots = asyncio.Semaphore(max(1, n // 2))
        self.snapshot_: Snapshot | None = None
        self._inflight: asyncio.Future | None = None
        self._inflight_sent: float | None = None
        self._watchers: dict[str, list[tuple[Callable[[Observation], bool], asyncio.Future]]] = {}
        self._poller: asyncio.Task | None = None

    # --- client lifecycle --------------------------------------------------------------------

    async def _credentials(self) -> tuple[dict, str] | Failure:
        """Client keyword arguments from the spec and its Secrets, plus their fingerprint (credentials.py)."""
        assert self.spec is not None
        creds = await credentials.resolve(self.spec, self._read_secret)
        return creds if isinstance(creds, Failure) else (creds.kwargs, creds.fingerprint)

    async def ensure_client(self, *, reread_secrets: bool = False) -> Failure | None:
        """Build (or rebuild, if the spec or a Secret changed) the client. Returns a failure or None."""
        if self.invalid:
            return self.failure
        async with self._build_lock:
            if self.client is not None and not reread_secrets:
                return self.failure
            creds = await self._credentials()
            if isinstance(creds, Failure):
                self.failure = creds
                return creds
            kwargs, fingerprint = creds
            if self.client is not None and fingerprint == self._fingerprint:
                if self.info is None:  # the server could not be asked yet: ask again, same client
                    self.failure = await self._check_server()
                return self.failure
            old = self.client
            spec = self.spec
            assert spec is not None
            self.client = AsyncElasticsearch(
                hosts=list(spec.urls),
                request_timeout=spec.request_timeout_s,
                max_retries=0,  # never re-send a call (a stop above all); the reconciler retries
                retry_on_status=(),
                retry_on_timeout=False,
                connections_per_node=spec.max_concurrent_requests,
                **kwargs,
            )
            self.gateway = Gateway(self.client)
            self._fingerprint = fingerprint
            if old is not None:
                log.info("connection %s/%s: spec or Secret changed, client rebuilt", self.namespace, self.name)
                asyncio.create_task(old.close())
            self.failure = await self._check_server()
            return self.failure

    async def _check_server(self) -> Failure | None:
        assert self.gateway is not None
        async with self.slots:
            info = await self.gateway.info()
        if isinstance(info, Failure):
            if info.kind == FORBIDDEN:
                # GET / needs the cluster privilege monitor, which a manage_rollup-only user lacks.
                # The rollup calls do not need it: carry on without knowing the version.
                self.info = ServerInfo(None, None, None)
                return None
            self.info = None
            # Reachability problems are not sticky: jobs still try, and see the failure themselves.
            # A malformed GET / answer is (answers.py): the connection says so until the next sync.
            return info if not info.transient or info.kind == UNEXPECTED_RESPONSE else None
        number = (info.get("version") or {}).get("number", "0")
        major, minor = _version_tuple(number)
        self.info = ServerInfo(number, deprecated=(major, minor) >= (8, 11), usage_rule=(major, minor) >= (8, 15))
        if major < 8:
            return Failure(UNSUPPORTED_VERSION, f"Elasticsearch {number} is not supported: the operator needs 8.0 or later (9.x works too)")
        return None

    async def close(self) -> None:
        if self._poller:
            self._poller.cancel()
        for waiters in self._watchers.values():
            for _, fut in waiters:
                fut.cancel()
        if self.client is not None:
            await self.client.close()

    @property
    def fingerprint(self) -> str | None:
        """Identifies the spec and Secret contents the current client was built from."""
        return self._fingerprint

    async def credentials_rotated(self, used: str | None) -> bool:
        """After a 401 to a call made with the client of fingerprint ``used``: re-read the Secrets;
        True if the client has changed since (now or meanwhile, through another call) and is usable."""
        await self.ensure_client(reread_secrets=True)
        return self._fingerprint != used and self.gateway is not None and self.failure is None

    # --- shared reads ------------------------------------------------------------------------

    async def _fetch(self, started: float) -> Snapshot:
        if self.failure is not None or self.gateway is None:
            failure = await self.ensure_client()
            if failure is not None:
                return Snapshot(started, failure=failure)
        assert self.gateway is not None
        used = self._fingerprint
        async with self.slots:
            jobs = await self.gateway.list_jobs()
        if isinstance(jobs, Failure) and jobs.kind == UNAUTHORIZED and await self.credentials_rotated(used):
            # The Secret was rotated (maybe picked up meanwhile by another call): try once more.
            async with self.slots:
                jobs = await self.gateway.list_jobs()
        metrics.CONNECTION_UP.labels(self.namespace, self.name).set(0 if isinstance(jobs, Failure) else 1)
        if isinstance(jobs, Failure):
            return Snapshot(started, failure=jobs)
        return Snapshot(started, jobs=jobs)

    async def snapshot(self, after: float) -> Snapshot:
        """A snapshot whose read was sent at or after ``after`` (monotonic), shared with other callers.

        A read waits ``coalesce_window`` before it is sent, and everyone who asks meanwhile rides
        on it; a caller whose ``after`` is later than a read already sent waits for the next one.
        """
        loop = asyncio.get_running_loop()
        while True:
            snap = self.snapshot_
            if snap is not None and snap.started_at >= after:
                return snap
            if self._inflight is not None:
                sent = self._inflight_sent
                if sent is None or sent >= after:
                    return await asyncio.shield(self._inflight)
                try:
                    await asyncio.shield(self._inflight)
                except Exception:  # noqa: BLE001 - the next round fetches again
                    pass
                continue
            fut: asyncio.Future = loop.create_future()
            self._inflight, self._inflight_sent = fut, None
            try:
                if self.coalesce_window:
                    await asyncio.sleep(self.coalesce_window)  # let simultaneous askers join
                self._inflight_sent = time.monotonic()
                snap = await self._fetch(self._inflight_sent)
                self.snapshot_ = snap
                fut.set_result(snap)
            except BaseException as e:
                fut.set_exception(e)
                fut.exception()  # mark retrieved
                raise
            finally:
                self._inflight = None
            return snap

    async def observe(self, job_id: str, after: float) -> Observation:
        return (await self.snapshot(after)).observe(job_id)

    async def wait_for(self, job_id: str, done: Callable[[Observation], bool], timeout: float) -> Observation | None:
        """Wait until the job's observation satisfies ``done`` (checked on the shared poll), or time out."""
        fut: asyncio.Future = asyncio.get_running_loop().create_future()
        entry = (done, fut)
        self._watchers.setdefault(job_id, []).append(entry)
        if self._poller is None or self._poller.done():
            self._poller = asyncio.create_task(self._poll(), name=f"poll {self.namespace}/{self.name}")
        try:
            return await asyncio.wait_for(asyncio.shield(fut), timeout)
        except asyncio.TimeoutError:
            return None
        finally:
            lst = self._watchers.get(job_id)
            if lst and entry in lst:
                lst.remove(entry)
                if not lst:
                    del self._watchers[job_id]

    async def _poll(self) -> None:
        while self._watchers:
            await asyncio.sleep(self.poll_interval)
            snap = await self.snapshot(time.monotonic())
            for job_id, lst in list(self._watchers.items()):
                obs = snap.observe(job_id)
                for done, fut in list(lst):
                    if not fut.done() and (isinstance(obs, Failure) or done(obs)):
                        fut.set_result(obs)


def build(body: dict, read_secret: SecretReader, **kw) -> Connection:
    """A Connection for an ElasticsearchConnection object; an invalid spec gives a connection that
    reports ``InvalidConnection`` to every job that uses it."""
    meta = body.get("metadata") or {}
    ns, name = meta.get("namespace", ""), meta.get("name", "")
    try:
        return Connection(ns, name, connection_spec_from_body(body), None, read_secret, **kw)
    except InvalidSpec as e:
        return Connection(ns, name, None, f"ElasticsearchConnection {ns}/{name} is invalid: {e}", read_secret, **kw)
