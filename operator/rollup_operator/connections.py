"""One pooled Elasticsearch client per ``ElasticsearchConnection``, and every call through it.

A connection owns:

* its client, built from the spec and its Secrets, rebuilt when either changes (Secrets are
  re-read on every periodic sync and at once when the server answers 401, so a rotated password
  is picked up without a restart);
* the request slots: ``slots`` bounds all requests in flight on this connection, and
  ``wait_slots`` (half of them, rounded down) bounds the stop calls that hold a request open while
  the server waits. So reads and quick calls always keep at least half the slots, and with
  ``maxConcurrentRequests: 1`` no stop waits on the server at all (it is confirmed by the poll);
* calls: ``call`` (a rollup call in a slot, with the 401-after-rotation rule), ``stop`` (waiting
  or not, confirmed through the shared poll when not), and the shared reads (reads.py).

Knows nothing of RollupJob resources beyond job ids.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import logging
import ssl
import time
from typing import Awaitable, Callable

from elasticsearch import AsyncElasticsearch

from . import metrics
from .gateway import Gateway, ServerInfo
from .model import ConnectionSpec, InvalidSpec, connection_spec_from_body
from .observations import (
    FORBIDDEN,
    INVALID_CONNECTION,
    SECRET_NOT_FOUND,
    UNAUTHORIZED,
    UNAVAILABLE,
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
from .reads import SharedReads, Snapshot

log = logging.getLogger(__name__)

SecretReader = Callable[[str, str], Awaitable["dict[str, bytes] | None"]]
Wanted = Callable[[], bool] | None


class Rotated:
    """A call was refused (401) with credentials that have been rotated since: look again."""


ROTATED = Rotated()


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
        self.wait_slots = asyncio.Semaphore(n // 2)  # 0 below 2: no stop ever waits on the server
        self.reads = SharedReads(self._fetch, poll_interval=poll_interval, coalesce_window=coalesce_window, name=f"{namespace}/{name}")

    # --- client lifecycle --------------------------------------------------------------------

    async def _credentials(self) -> tuple[dict, str] | Failure:
        """Client keyword arguments from the spec and its Secrets, plus their fingerprint."""
        spec = self.spec
        assert spec is not None
        secrets: dict[str, dict[str, bytes]] = {}
        for name in sorted(spec.secret_names):
            try:
                data = await self._read_secret(spec.namespace, name)
            except Exception as e:  # noqa: BLE001 - e.g. RBAC; say so in status rather than crash
                return Failure(SECRET_NOT_FOUND, f"cannot read Secret {spec.namespace}/{name}: {e}")
            if data is None:
                return Failure(SECRET_NOT_FOUND, f"Secret {spec.namespace}/{name} referenced by ElasticsearchConnection {spec.name} does not exist")
            secrets[name] = data

        def value(ref) -> bytes | Failure:
            v = secrets[ref.name].get(ref.key)
            if v is None:
                return Failure(SECRET_NOT_FOUND, f"Secret {spec.namespace}/{ref.name} has no key {ref.key!r} (keys: {', '.join(sorted(secrets[ref.name])) or 'none'})")
            return v

        kwargs: dict = {}
        digest = hashlib.sha256(repr(spec).encode())
        if spec.username:
            user, pw = value(spec.username), value(spec.password)
            for v in (user, pw):
                if isinstance(v, Failure):
                    return v
            kwargs["basic_auth"] = (user.decode().strip(), pw.decode().strip())
            digest.update(user + b"\0" + pw)
        if spec.api_key:
            key = value(spec.api_key)
            if isinstance(key, Failure):
                return key
            k = key.decode().strip()
            kwargs["api_key"] = tuple(k.split(":", 1)) if ":" in k else k
            digest.update(key)
        if any(u.startswith("https") for u in spec.urls):
            if spec.insecure_skip_verify:
                ctx = ssl.create_default_context()
                ctx.check_hostname = False
                ctx.verify_mode = ssl.CERT_NONE
                kwargs["ssl_context"] = ctx
                kwargs["ssl_show_warn"] = False
            elif spec.ca:
                ca = value(spec.ca)
                if isinstance(ca, Failure):
                    return ca
                try:
                    kwargs["ssl_context"] = ssl.create_default_context(cadata=ca.decode())
                except (ssl.SSLError, ValueError) as e:
                    return Failure(INVALID_CONNECTION, f"the CA certificate in Secret {spec.ca.name} key {spec.ca.key} is not valid PEM: {e}")
                digest.update(ca)
        return kwargs, digest.hexdigest()

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
            return info if not info.transient else None
        number = (info.get("version") or {}).get("number", "0")
        self.info = ServerInfo.of(number)
        if self.info.major < 8:
            return Failure(UNSUPPORTED_VERSION, f"Elasticsearch {number} is not supported: the operator needs 8.0 or later (9.x works too)")
        return None

    async def close(self) -> None:
        self.reads.close()
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

    # --- calls --------------------------------------------------------------------------------

    async def gateway_or_failure(self) -> Gateway | Failure:
        """The gateway, building the client first if there is none yet, or why there is none."""
        if self.gateway is None:
            failure = await self.ensure_client()
            if self.gateway is None:
                return failure or Failure(UNAVAILABLE, f"no client for ElasticsearchConnection {self.namespace}/{self.name} yet")
        return self.gateway

    async def call(self, fn: Callable[[Gateway], Awaitable[Outcome]], still_wanted: Wanted = None) -> Outcome | Rotated | None:
        """Run one rollup call in a request slot.

        Returns None if ``still_wanted`` says no once a slot is free (the spec moved on while the
        call queued), and :data:`ROTATED` after a 401 when the Secret has changed since the client
        was built: the caller looks again and decides with the new client.
        """
        gw = await self.gateway_or_failure()
        if isinstance(gw, Failure):
            return gw
        used = self._fingerprint
        async with self.slots:
            if still_wanted is not None and not still_wanted():
                return None
            out = await fn(gw)
        return await self._after_401(out, used)

    async def _after_401(self, out: Outcome, used: str | None) -> Outcome | Rotated:
        if isinstance(out, Failure) and out.kind == UNAUTHORIZED and await self.credentials_rotated(used):
            return ROTATED
        return out

    async def stop(self, job_id: str, *, wait_wanted: bool, timeout: str, timeout_s: float,
                   still_wanted: Wanted, log: logging.LoggerAdapter[logging.Logger],
                   on_send: Callable[[], None] | None = None) -> tuple[Outcome, Observation | None] | Rotated | None:
        """Stop a job: with the server's wait while a waiting slot is free, else a quick stop
        confirmed by the shared poll within ``timeout_s``. Returns (outcome, what it showed of the job).
        ``on_send`` is called as the request goes out (it holds a slot)."""
        gw = await self.gateway_or_failure()
        if isinstance(gw, Failure):
            return gw, None
        assert self.spec is not None
        used = self._fingerprint
        t0 = time.monotonic()
        wait = wait_wanted and not self.wait_slots.locked()
        async with (self.wait_slots if wait else contextlib.nullcontext()), self.slots:
            if not still_wanted():
                return None
            log.info("stop rollup job [%s] (%s)", job_id,
                     f"wait_for_completion, timeout {timeout}" if wait else "server does not wait; confirming by shared reads")
            if on_send is not None:
                on_send()
            out = await gw.stop(job_id, wait=wait, timeout=timeout, timeout_s=timeout_s, request_timeout=self.spec.request_timeout_s)
        if await self._after_401(out, used) is ROTATED:
            return ROTATED
        next_obs: Observation | None = None
        if not wait and isinstance(out, Done):
            left = max(0.0, timeout_s - (time.monotonic() - t0))
            res = await self.reads.wait_for(job_id, lambda o: not (isinstance(o, JobObserved) and o.state in (STARTED, INDEXING, STOPPING)), left)
            if res is None:
                seen = self.reads.latest(job_id)
                out = StopTimedOut(seen.state if isinstance(seen, JobObserved) else STOPPING)
            else:
                next_obs = res
        if isinstance(out, StopTimedOut):
            metrics.STOP_TIMEOUTS.inc()
            log.info("stop of rollup job [%s] timed out after %s (state %s); retrying", job_id, timeout, out.state)
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
            jobs = await self.gateway.list_jobs()
        if isinstance(jobs, Failure) and jobs.kind == UNAUTHORIZED and await self.credentials_rotated(used):
            # The Secret was rotated (maybe picked up meanwhile by another call): try once more.
            async with self.slots:
                jobs = await self.gateway.list_jobs()
        metrics.CONNECTION_UP.labels(self.namespace, self.name).set(0 if isinstance(jobs, Failure) else 1)
        if isinstance(jobs, Failure):
            return Snapshot(started, failure=jobs)
        return Snapshot(started, jobs=jobs)



def build(body: dict, read_secret: SecretReader, **kw) -> Connection:
    """A Connection for an ElasticsearchConnection object; an invalid spec gives a connection that
    reports ``InvalidConnection`` to every job that uses it."""
    meta = body.get("metadata") or {}
    ns, name = meta.get("namespace", ""), meta.get("name", "")
    try:
        return Connection(ns, name, connection_spec_from_body(body), None, read_secret, **kw)
    except InvalidSpec as e:
        return Connection(ns, name, None, f"ElasticsearchConnection {ns}/{name} is invalid: {e}", read_secret, **kw)
