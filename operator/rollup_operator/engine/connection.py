"""One pooled Elasticsearch client per ``ElasticsearchConnection``, and every call through it.

A connection owns:

* its client, built from the spec and its Secrets, rebuilt when either changes (Secrets are
  re-read on every periodic sync and at once when the server answers 401, so a rotated password
  is picked up without a restart);
* the request slots: ``slots`` bounds all requests in flight on this connection, and
  ``wait_slots`` (half of them, rounded down) bounds the stop calls that hold a request open while
  the server waits. So reads and quick calls always keep at least half the slots, and with
  ``maxConcurrentRequests: 1`` no stop waits on the server at all (it is confirmed by the poll);
* its dialect (dialect.py): the rollup API of spec.engine, or of the engine ``GET /`` names when it
  is auto (Elasticsearch first; a server that is not Elasticsearch is asked again as OpenSearch);
* calls: ``call`` (a rollup call in a slot, with the 401-after-rotation rule), ``stop`` (waiting
  or not, confirmed through the shared poll when not), and the shared reads (reads.py).

Knows nothing of RollupJob resources beyond job ids.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from dataclasses import dataclass
from typing import Any, Awaitable, Callable, Iterator

from elasticsearch import AsyncElasticsearch

from rollup_operator.engine import bounded_node
from rollup_operator.engine import credentials
from rollup_operator import metrics
from rollup_operator.engine import dialect
from rollup_operator.engine.dialect import RollupDialect
from rollup_operator.engine.elasticsearch.rollup_api import ServerInfo
from rollup_operator.job.config import InvalidSpec
from rollup_operator.job.connection_spec import ConnectionSpec, connection_spec_from_body
from rollup_operator.job.ownership import cluster_identities
from rollup_operator.job.observations import (
    FORBIDDEN,
    INVALID_CONNECTION,
    UNAUTHORIZED,
    UNAVAILABLE,
    UNEXPECTED_RESPONSE,
    UNSUPPORTED_VERSION,
    INDEXING,
    STARTED,
    STOPPING,
    Done,
    Failure,
    JobObserved,
    Observation,
    Outcome,
    StopTimedOut,
)
from rollup_operator.engine.shared_reads import SharedReads, Snapshot

log = logging.getLogger(__name__)



@dataclass(frozen=True)
class Awaiting:
    """A request of this connection's that has been sent and not answered yet."""

    request: str  # e.g. "GET _rollup/job/_all"
    sent_at: float  # wall-clock time it was sent (epoch seconds)


@dataclass
class StopRequest:
    """One stop of one job: what to ask, and (set by ``Connection.stop``) when it went out."""

    job_id: str
    wait_wanted: bool  # spec.waitForCompletion
    timeout: str  # the server's wait, as the spec says it
    timeout_s: float
    superseded: asyncio.Event  # looked at once a request slot is free: set[str], the stop is no longer wanted
    sent_at: float | None = None  # wall-clock time the request was sent; None: never sent


class Rotated:
    """A call was refused (401) with credentials that have been rotated since: look again."""


ROTATED = Rotated()


class Connection:
    def __init__(self, namespace: str, name: str, spec: ConnectionSpec | None, invalid: str | None,
                 read_secret: credentials.SecretGetter, *, poll_interval: float = 1.0, coalesce_window: float = 0.05,
                 dialects: Callable[[AsyncElasticsearch, str], RollupDialect] = dialect.build):
        self.namespace, self.name = namespace, name
        #: Makes the rollup API for an engine on the client (dialect.build; an in-memory fake in tests).
        self._dialects = dialects
        self.spec = spec
        self.invalid = invalid
        self._read_secret = read_secret
        self.poll_interval = poll_interval
        self.coalesce_window = coalesce_window
        self.client: AsyncElasticsearch | None = None
        self.gateway: RollupDialect | None = None
        self.info: ServerInfo | None = None
        self.failure: Failure | None = Failure(INVALID_CONNECTION, invalid) if invalid else None
        self._fingerprint: str | None = None
        self.insecure_warned = False  # the InsecureTransport Warning of this generation was posted (sync.py)
        self._build_lock = asyncio.Lock()
        self._checked = False  # the server was asked (GET /) or could not be, for lack of credentials
        #: Called when ``clusters`` changes (the controller re-indexes this connection's claims).
        self.on_clusters: Callable[[], None] | None = None
        n = spec.max_concurrent_requests if spec else 1
        self.slots = asyncio.Semaphore(n)
        self.wait_slots = asyncio.Semaphore(n // 2)  # 0 below 2: no stop ever waits on the server
        self._asked: list[Awaiting] = []  # requests in flight (oldest first), for ``awaiting``
        self.reads = SharedReads(self._fetch, poll_interval=poll_interval, coalesce_window=coalesce_window, name=f"{namespace}/{name}")

    # --- what it waits for --------------------------------------------------------------------

    @contextlib.contextmanager
    def _asking(self, request: str) -> Iterator[None]:
        asked = Awaiting(request, time.time())
        self._asked.append(asked)
        try:
            yield
        finally:
            self._asked.remove(asked)

    def awaiting(self) -> str:
        """What a caller of this connection is waiting for, in words (for a status message while
        a server does not answer): the oldest request in flight, or a free request slot."""
        if not self._asked:
            return "a free request slot (all are in use)" if self.slots.locked() else "the connection's client"
        a = self._asked[0]
        sent = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(a.sent_at))
        limit = f", given up after requestTimeout ({self.spec.request_timeout_s:g}s)" if self.spec else ""
        return f"the answer to {a.request} (sent {sent}{limit})"

    # --- client lifecycle --------------------------------------------------------------------

    async def _credentials(self) -> tuple[dict[str, Any], str] | Failure:
        """Client keyword arguments from the spec and its Secrets, plus their fingerprint (credentials.py)."""
        assert self.spec is not None
        creds = await credentials.resolve(self.spec, self._read_secret)
        return creds if isinstance(creds, Failure) else (creds.kwargs, creds.fingerprint)

    @property
    def clusters(self) -> frozenset[str] | None:
        """The identities of the cluster behind this connection (ownership.py): empty until the server
        was asked; None for a connection that cannot be used at all (an invalid spec)."""
        if self.spec is None:
            return None
        if not self._checked:
            return frozenset()
        return cluster_identities(self.spec.urls, self.info.cluster_uuid if self.info else None)

    async def ensure_client(self, *, reread_secrets: bool = False) -> Failure | None:
        """Build (or rebuild, if the spec or a Secret changed) the client. Returns a failure or None."""
        before = self.clusters
        try:
            return await self._ensure_client(reread_secrets)
        finally:
            if self.on_clusters is not None and self.clusters != before:
                self.on_clusters()

    async def _ensure_client(self, reread_secrets: bool) -> Failure | None:
        if self.invalid:
            return self.failure
        async with self._build_lock:
            if self.client is not None and not reread_secrets:
                return self.failure
            creds = await self._credentials()
            if isinstance(creds, Failure):
                self.failure = creds
                self._checked = True  # nothing can be asked without credentials: the URLs identify it
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
                node_class=bounded_node.node_class(spec.max_response_bytes),  # every answer read with a bound
                **kwargs,
            )
            self.gateway = self._dialects(self.client, self.engine or spec.engine)  # auto: as last seen
            self._fingerprint = fingerprint
            if old is not None:
                log.info("connection %s/%s: spec or Secret changed, client rebuilt", self.namespace, self.name)
                asyncio.create_task(old.close())
            self.failure = await self._check_server()
            return self.failure

    async def _check_server(self) -> Failure | None:
        assert self.gateway is not None and self.client is not None and self.spec is not None
        try:
            async with self.slots:
                with self._asking("GET /"):
                    self.gateway, info = await dialect.identify(self.client, self.gateway, self.spec.engine)
        finally:
            self._checked = True
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
        self.info = ServerInfo.of(number, info.get("cluster_uuid"))
        if self.gateway.engine == dialect.OPENSEARCH:  # any version with the rollup plugin (tested: 2.19)
            self.info = ServerInfo(number, False, False, self.info.major, self.info.cluster_uuid)
            return dialect.wrong_engine(info)
        if self.info.major < 8:
            return Failure(UNSUPPORTED_VERSION, f"Elasticsearch {number} is not supported: the operator needs 8.0 or later (9.x works too)")
        return None

    async def close(self) -> None:
        self.reads.close()
        if self.client is not None:
            await self.client.close()

    async def credentials_rotated(self, used: str | None) -> bool:
        """After a 401 to a call made with the client of fingerprint ``used``: re-read the Secrets;
        True if the client has changed since (now or meanwhile, through another call) and is usable."""
        await self.ensure_client(reread_secrets=True)
        return self._fingerprint != used and self.gateway is not None and self.failure is None

    # --- calls --------------------------------------------------------------------------------

    @property
    def engine(self) -> str | None:
        """The engine in use (elasticsearch | opensearch), once the server was asked or spec.engine names it."""
        if self.gateway is None or (self.spec is not None and self.spec.engine == dialect.AUTO and self.info is None):
            return None
        return self.gateway.engine

    async def gateway_or_failure(self) -> RollupDialect | Failure:
        """The gateway, building the client first if there is none yet, or why there is none."""
        if self.gateway is None:
            failure = await self.ensure_client()
            if self.gateway is None:
                return failure or Failure(UNAVAILABLE, f"no client for ElasticsearchConnection {self.namespace}/{self.name} yet")
        return self.gateway

    async def call(self, fn: Callable[[RollupDialect], Awaitable[Outcome]], superseded: asyncio.Event | None = None) -> Outcome | Rotated | None:
        """Run one rollup call in a request slot.

        Returns None if ``superseded`` is set once a slot is free (the job was queued again while
        the call waited), and :data:`ROTATED` after a 401 when the Secret has changed since the
        client was built: the caller looks again and decides with the new client.
        """
        gw = await self.gateway_or_failure()
        if isinstance(gw, Failure):
            return gw
        used = self._fingerprint
        async with self.slots:
            if superseded is not None and superseded.is_set():
                return None
            out = await fn(gw)
        return await self._after_401(out, used)

    async def _after_401(self, out: Outcome, used: str | None) -> Outcome | Rotated:
        if isinstance(out, Failure) and out.kind == UNAUTHORIZED and await self.credentials_rotated(used):
            return ROTATED
        return out

    async def stop(self, req: StopRequest, log: logging.LoggerAdapter[logging.Logger]) -> tuple[Outcome, Observation | None] | Rotated | None:
        """Stop a job: with the server's wait while a waiting slot is free, else a quick stop
        confirmed by the shared poll within ``req.timeout_s``. Returns (outcome, what it showed of
        the job); None if the request was not sent because ``req.superseded`` was set once a slot
        was free. ``req.sent_at`` is set as the request goes out."""
        gw = await self.gateway_or_failure()
        if isinstance(gw, Failure):
            return gw, None
        assert self.spec is not None
        used = self._fingerprint
        t0 = time.monotonic()
        job_id = req.job_id
        wait = req.wait_wanted and not self.wait_slots.locked()
        async with (self.wait_slots if wait else contextlib.nullcontext()), self.slots:
            if req.superseded.is_set():
                return None
            log.info("stop rollup job [%s] (%s)", job_id,
                     "server does not wait; confirming by shared reads" if not wait else f"wait_for_completion, timeout {req.timeout}"
                     if gw.engine == dialect.ELASTICSEARCH else f"OpenSearch: the operator watches it stop, at most {req.timeout}")
            req.sent_at = time.time()
            out = await gw.stop(job_id, wait=wait, timeout=req.timeout, timeout_s=req.timeout_s, request_timeout=self.spec.request_timeout_s)
        if await self._after_401(out, used) is ROTATED:
            return ROTATED
        next_obs: Observation | None = None
        if not wait and isinstance(out, Done):
            left = max(0.0, req.timeout_s - (time.monotonic() - t0))
            res = await self.reads.wait_for(job_id, lambda o: not (isinstance(o, JobObserved) and o.state in (STARTED, INDEXING, STOPPING)), left)
            if res is None:
                seen = self.reads.latest(job_id)
                out = StopTimedOut(seen.state if isinstance(seen, JobObserved) else STOPPING)
            else:
                next_obs = res
        if isinstance(out, StopTimedOut):
            metrics.STOP_TIMEOUTS.inc()
            log.info("stop of rollup job [%s] timed out after %s (state %s); retrying", job_id, req.timeout, out.state)
        return out, next_obs

    # --- shared reads (reads.py) ---------------------------------------------------------------

    async def _fetch(self, started: float) -> Snapshot:
        if self.failure is not None or self.gateway is None:
            failure = await self.ensure_client()
            if failure is not None:
                return Snapshot(started, failure=failure)
        assert self.gateway is not None
        used = self._fingerprint
        async with self.slots:
            with self._asking("GET _rollup/job/_all"):
                jobs = await self.gateway.list_jobs()
        if isinstance(jobs, Failure) and jobs.kind == UNAUTHORIZED and await self.credentials_rotated(used):
            # The Secret was rotated (maybe picked up meanwhile by another call): try once more.
            async with self.slots:
                with self._asking("GET _rollup/job/_all"):
                    jobs = await self.gateway.list_jobs()
        metrics.CONNECTION_UP.labels(self.namespace, self.name).set(0 if isinstance(jobs, Failure) else 1)
        if isinstance(jobs, Failure):
            return Snapshot(started, failure=jobs)
        return Snapshot(started, jobs=jobs)


def build(body: dict[str, Any], read_secret: credentials.SecretGetter, **kw: Any) -> Connection:
    """A Connection for an ElasticsearchConnection object; an invalid spec gives a connection that
    reports ``InvalidConnection`` to every job that uses it."""
    meta = body.get("metadata") or {}
    ns, name = meta.get("namespace", ""), meta.get("name", "")
    try:
        return Connection(ns, name, connection_spec_from_body(body), None, read_secret, **kw)
    except InvalidSpec as e:
        return Connection(ns, name, None, f"ElasticsearchConnection {ns}/{name} is invalid: {e}", read_secret, **kw)
