"""The emulator object: lifecycle, faults, seeding and inspection (async API).

:class:`ElasticsearchEmulator` runs on the caller's event loop::

    async with ElasticsearchEmulator(version="8.17.0", auto_trigger=False) as emu:
        emu.add_job("j1", state="started")
        client = AsyncElasticsearch(emu.url, max_retries=0)
        ...

Control methods that only touch in-memory state are plain methods (call them from the loop the
emulator runs on); the ones that touch sockets or wait are coroutines: :meth:`start`,
:meth:`close`, :meth:`go_down`, :meth:`come_up`, :meth:`restart`, :meth:`wait_for_state`.
For non-async code use :class:`~.threaded.EmulatorThread`, which exposes all of them as plain
synchronous methods.
"""

from __future__ import annotations

import asyncio
import collections
import copy
import fnmatch
import os
import ssl
import tempfile
import uuid
from typing import Any

from aiohttp import web

from .control import ControlApi
from .jobconfig import config_from_dict
from .security import Security
from .server import RequestRecord, RestServer
from .state import STAT_FIELDS, TIMING_KEYS, Cluster, Job, Timing
from .versions import VersionProfile

SOURCE_INDEX = "rollup-source"
TARGET_INDEX = "rollup-target"
SOURCE_MAPPINGS = {"properties": {"timestamp": {"type": "date"}, "value": {"type": "long"},
                                  "host": {"type": "keyword"}}}
DEFAULT_JOB_CONFIG: dict[str, Any] = {
    "index_pattern": SOURCE_INDEX,
    "rollup_index": TARGET_INDEX,
    "cron": "*/30 * * * * ?",
    "page_size": 1000,
    "groups": {"date_histogram": {"field": "timestamp", "fixed_interval": "1h"}},
    "metrics": [{"field": "value", "metrics": ["min", "max", "sum"]}],
    "timeout": "20s",
}


class ElasticsearchEmulator:
    """A stateful Elasticsearch rollup emulator speaking real HTTP on loopback."""

    def __init__(
        self,
        version: str = "8.17.0",
        users: dict[str, Any] | None = None,
        api_keys: dict[str, Any] | None = None,
        tls: bool = False,
        *,
        cert_dir: str | None = None,
        auto_trigger: bool = True,
        page_duration: float = 1.0,
        docs_per_page: int = 100,
        pages_per_run: int | None = 3,
        stop_delay: float | None = None,
        latency: float = 0.0,
        not_elasticsearch: bool = False,
        poll_emulation: bool = False,
        cluster_name: str = "elasticsearch",
        node_name: str | None = None,
        log_requests: bool = True,
        max_logged_requests: int = 100_000,
        seed_jobs: int = 0,
    ):
        self.profile = VersionProfile.parse(version)
        self.version = self.profile.number
        self.tls = tls
        self.cert_dir = cert_dir
        self.latency = float(latency)
        self.not_elasticsearch = not_elasticsearch
        self.poll_emulation = poll_emulation
        self.cluster_name = cluster_name
        self.node_name = node_name or f"emulator-{uuid.uuid4().hex[:6]}"
        self.cluster_uuid = uuid.uuid4().hex[:22]
        self.log_requests = log_requests
        self._log_buf: collections.deque[RequestRecord] = collections.deque(maxlen=max_logged_requests)
        self._faults: list[dict[str, Any]] = []
        self.security = Security.build(self.profile, users, api_keys, tls)
        self.cluster = Cluster(self.profile, timing=Timing(page_duration, docs_per_page, pages_per_run, stop_delay),
                               auto_trigger=auto_trigger)
        self.rest = RestServer(self)
        self.control = ControlApi(self)
        self._seed_jobs = seed_jobs
        self._runner: web.AppRunner | None = None
        self._site: web.TCPSite | None = None
        self._ssl: ssl.SSLContext | None = None
        self.host = "127.0.0.1"
        self.port = 0
        self.is_down = False
        self.ca_pem: bytes | None = None
        self.ca_file: str | None = None
        self._tmpdir: tempfile.TemporaryDirectory | None = None
        self._pending: set[asyncio.Task] = set()

    # -- lifecycle ------------------------------------------------------------------------------
    @property
    def url(self) -> str:
        scheme = "https" if self.tls else "http"
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{scheme}://{host}:{self.port}"

    async def start(self, host: str = "127.0.0.1", port: int = 0) -> "ElasticsearchEmulator":
        self.host = host
        self.cluster._loop = asyncio.get_running_loop()
        if self.tls:
            self._setup_tls(host)
        app = web.Application(client_max_size=100 * 1024 * 1024)
        app.router.add_route("*", "/{tail:.*}", self.rest.handle)
        self._runner = web.AppRunner(app, handle_signals=False, access_log=None)
        await self._runner.setup()
        self._site = web.TCPSite(self._runner, host, port, ssl_context=self._ssl, reuse_address=True, backlog=1024)
        await self._site.start()
        server = self._site._server  # type: ignore[attr-defined]
        self.port = server.sockets[0].getsockname()[1]
        if self._seed_jobs:
            self.seed_jobs(self._seed_jobs)
        return self

    async def close(self) -> None:
        self.cluster.close()
        for t in list(self._pending):
            t.cancel()
        if self._runner is not None:
            self._close_connections()
            await self._runner.cleanup()
            self._runner = None
        if self._tmpdir is not None:
            self._tmpdir.cleanup()
            self._tmpdir = None

    async def __aenter__(self) -> "ElasticsearchEmulator":
        if self._runner is None:
            await self.start()
        return self

    async def __aexit__(self, *exc: Any) -> None:
        await self.close()

    def _setup_tls(self, host: str) -> None:
        import trustme  # lazily: only needed with TLS

        ca = trustme.CA()
        names = ["localhost", "127.0.0.1", "::1"]
        if host not in names and host not in ("0.0.0.0", "::"):
            names.append(host)
        cert = ca.issue_cert(*names)
        self._ssl = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        cert.configure_cert(self._ssl)
        self.ca_pem = ca.cert_pem.bytes()
        directory = self.cert_dir
        if directory is None:
            self._tmpdir = tempfile.TemporaryDirectory(prefix="es-emulator-")
            directory = self._tmpdir.name
        os.makedirs(directory, exist_ok=True)
        self.ca_file = os.path.join(directory, "ca.pem")
        ca.cert_pem.write_to_path(self.ca_file)
        cert.private_key_and_cert_chain_pem.write_to_path(os.path.join(directory, "server.pem"))

    # -- faults ---------------------------------------------------------------------------------
    def set_latency(self, seconds: float) -> None:
        """Delay every (non-control) response by ``seconds``."""
        self.latency = float(seconds)

    def set_not_elasticsearch(self, enabled: bool = True) -> None:
        """Drop ``X-Elastic-Product`` so the official client raises ``UnsupportedProductError``."""
        self.not_elasticsearch = enabled

    def fail_next(self, n: int = 1, status: int = 503, *, method: str | None = None, path: str | None = None,
                  error_type: str | None = None, reason: str | None = None, body: Any = None) -> None:
        """Answer the next ``n`` matching requests with ``status`` and a realistic error body.

        ``path`` may be a glob (``/_rollup/job/*/_stop``). 502/504 answer like a proxy would
        (HTML, no product header). ``body``: answer exactly this instead (any JSON value, sent as
        JSON; a str, sent as text/plain; bytes, sent as application/json), with the product header unless ``not_elasticsearch``:
        e.g. ``fail_next(status=200, path="/_rollup/job/_all", body={})`` for a malformed answer."""
        self._faults.append({"remaining": int(n), "status": int(status), "method": method, "path": path,
                             "type": error_type, "reason": reason, "body": body})

    def clear_faults(self) -> None:
        self._faults.clear()
        self.latency = 0.0

    def _take_fault(self, method: str, path: str) -> dict[str, Any] | None:
        for f in self._faults:
            if f["remaining"] <= 0:
                continue
            if f["method"] and f["method"].upper() != method:
                continue
            if f["path"] and not fnmatch.fnmatchcase(path, f["path"]):
                continue
            f["remaining"] -= 1
            if f["remaining"] == 0:
                self._faults.remove(f)
            return f
        return None

    def _close_connections(self) -> None:
        if self._runner is not None and self._runner.server is not None:
            for handler in self._runner.server.connections:
                handler.force_close()

    async def go_down(self) -> None:
        """Refuse connections: close the listening socket and every open connection."""
        if self.is_down or self._site is None:
            return
        self.is_down = True
        await self._site.stop()
        self._site = None
        self._close_connections()

    async def come_up(self) -> None:
        """Listen again on the same host and port."""
        if not self.is_down or self._runner is None:
            return
        self._site = web.TCPSite(self._runner, self.host, self.port, ssl_context=self._ssl, reuse_address=True,
                                 backlog=1024)
        await self._site.start()
        self.is_down = False

    def down_for(self, seconds: float) -> None:
        """Go down now and come back after ``seconds`` (usable from the control API)."""
        async def run() -> None:
            await self.go_down()
            await asyncio.sleep(seconds)
            await self.come_up()
        self._spawn(run())

    async def restart(self, downtime: float = 0.0) -> None:
        """A node restart: connections drop (waiters included), indexing -> started,
        stopping/aborting -> stopped, stats reset; the listening port stays the same."""
        await self.go_down()
        self.cluster.restart()
        if downtime > 0:
            await asyncio.sleep(downtime)
        await self.come_up()

    def _spawn(self, coro: Any) -> None:
        task = asyncio.get_running_loop().create_task(coro)
        self._pending.add(task)
        task.add_done_callback(self._pending.discard)

    # -- out-of-band changes --------------------------------------------------------------------
    def oob_start(self, job_id: str) -> None:
        """Start a job as another client would (no request is logged)."""
        self.cluster.start_job(job_id)

    def oob_stop(self, job_id: str) -> None:
        self.cluster.stop_job(job_id)

    def oob_delete(self, job_id: str) -> None:
        """Remove a job whatever its state (someone else deleted it)."""
        self.cluster.oob_delete(job_id)

    # -- security -------------------------------------------------------------------------------
    def set_user(self, name: str, password: str, privileges: list[str], roles: list[str] | None = None) -> None:
        self.security.set_user(name, password, privileges, roles)

    def set_user_password(self, name: str, password: str) -> None:
        self.security.set_user_password(name, password)

    def remove_user(self, name: str) -> None:
        self.security.remove_user(name)

    def set_api_key(self, key_id: str, key: str, privileges: list[str], owner: str = "api_key_owner") -> None:
        self.security.set_api_key(key_id, key, privileges, owner)

    def revoke_api_key(self, key_id: str) -> None:
        self.security.revoke_api_key(key_id)

    # -- request log ----------------------------------------------------------------------------
    def _log(self, record: RequestRecord) -> None:
        self._log_buf.append(record)

    def requests(self, method: str | None = None, path: str | None = None) -> list[RequestRecord]:
        """Logged requests, optionally filtered by method and path (exact or glob)."""
        out = []
        for r in self._log_buf:
            if method and r.method != method.upper():
                continue
            if path and r.path != path and not fnmatch.fnmatchcase(r.path, path):
                continue
            out.append(r)
        return out

    def count(self, method: str | None = None, path: str | None = None) -> int:
        return len(self.requests(method, path))

    def clear_requests(self) -> None:
        self._log_buf.clear()

    # -- seeding and inspection -------------------------------------------------------------------
    def create_index(self, name: str, mappings: dict[str, Any] | None = None,
                     settings: dict[str, Any] | None = None) -> None:
        self.cluster.indices.create(name, copy.deepcopy(mappings), copy.deepcopy(settings))

    def put_index_template(self, name: str, body: dict[str, Any]) -> None:
        """A composable index template, as ``PUT _index_template/<name>`` stores it."""
        self.cluster.indices.composable[name] = copy.deepcopy(body)

    def create_data_stream(self, name: str) -> None:
        """A data stream (its template must exist), as ``PUT _data_stream/<name>`` creates it."""
        from .datastreams import create_data_stream

        create_data_stream(self.cluster.indices, name)

    def index_docs(self, target: str, docs: list[dict[str, Any]]) -> list[str]:
        """Index sources into an index or a data stream (tsdocs.py); returns where each went."""
        from .tsdocs import index_documents

        return index_documents(self.cluster.indices, target, copy.deepcopy(docs))

    def rollup_now(self, job_id: str) -> int:
        """Write the job's rollup documents of the complete buckets since its checkpoint (rollup_data.py)."""
        from .rollup_data import materialize

        return materialize(self.cluster.indices, self._job(job_id))

    def run_ilm(self, advance: str = "0ms") -> list[dict[str, Any]]:
        """One ILM pass as if ``advance`` (e.g. ``"2d"``) more had passed (ilm.py); returns its steps."""
        from .ilm import run
        from .search import interval_ms

        return run(self.cluster.indices, interval_ms(advance) if advance not in ("0", "0ms") else 0)

    def documents(self, index: str) -> list[dict[str, Any]]:
        """The sources stored in one index (a copy)."""
        return copy.deepcopy(self.cluster.indices.documents.get(index, []))

    def seed_rollup_usage(self, index: str = "rollup-usage") -> None:
        """Create an index whose mapping has ``_meta._rollup`` (satisfies the 8.15+ usage rule)."""
        if index not in self.cluster.indices.indices:
            self.create_index(index, {"_meta": {"rollup-version": "", "_rollup": {}}})

    def add_job(self, job_id: str, config: dict[str, Any] | None = None, state: str = "stopped",
                **timing: Any) -> None:
        """Create a valid job without HTTP. ``config`` overrides keys of the default config
        (source index ``rollup-source`` with ``timestamp``/``value``/``host``, rollup index
        ``rollup-target``). ``timing`` may set ``page_duration``, ``docs_per_page``,
        ``pages_per_run``, ``stop_delay`` for this job."""
        _check_timing(timing)
        conf = copy.deepcopy(DEFAULT_JOB_CONFIG)
        conf.update(copy.deepcopy(config or {}))
        conf["id"] = job_id
        if conf["index_pattern"] == SOURCE_INDEX and SOURCE_INDEX not in self.cluster.indices.indices:
            self.create_index(SOURCE_INDEX, SOURCE_MAPPINGS)
        self.cluster.add_job(config_from_dict(conf, job_id), state, timing)

    def seed_jobs(self, n: int, prefix: str = "job-", state: str = "stopped", **timing: Any) -> list[str]:
        ids = [f"{prefix}{i:04d}" for i in range(n)]
        for job_id in ids:
            self.add_job(job_id, state=state, **timing)
        return ids

    def _job(self, job_id: str) -> Job:
        job = self.cluster.jobs.get(job_id)
        if job is None:
            raise KeyError(f"no rollup job [{job_id}]")
        return job

    def job_state(self, job_id: str) -> str | None:
        """The job's ``job_state``, or None when it does not exist."""
        job = self.cluster.jobs.get(job_id)
        return job.state if job else None

    def job_stats(self, job_id: str) -> dict[str, int]:
        return dict(self._job(job_id).stats)

    def job_ids(self) -> list[str]:
        return list(self.cluster.jobs)

    def get_job(self, job_id: str) -> dict[str, Any]:
        """The job as ``GET _rollup/job/<id>`` shows it."""
        import json
        return json.loads(self.cluster.job_json(self._job(job_id)))

    def trigger(self, job_id: str) -> bool:
        """Fire the job's schedule now: ``started`` -> ``indexing``. Returns whether it began a run."""
        return self.cluster.trigger_job(self._job(job_id))

    def trigger_all(self) -> int:
        return sum(self.cluster.trigger_job(j) for j in list(self.cluster.jobs.values()))

    def force_state(self, job_id: str, state: str) -> None:
        self.cluster.force_state(job_id, state)

    def set_timing(self, **timing: Any) -> None:
        """Change global defaults: page_duration, docs_per_page, pages_per_run, stop_delay."""
        _check_timing(timing)
        for k, v in timing.items():
            setattr(self.cluster.timing, k, v)

    def set_job_timing(self, job_id: str, **timing: Any) -> None:
        _check_timing(timing)
        self._job(job_id).overrides.update(timing)

    def set_auto_trigger(self, enabled: bool) -> None:
        self.cluster.auto_trigger = enabled
        for job in self.cluster.jobs.values():
            if enabled:
                self.cluster._arm_cron(job)
            elif job.cron_handle is not None:
                job.cron_handle.cancel()
                job.cron_handle = None

    async def wait_for_state(self, job_id: str, state: str, timeout: float = 5.0) -> bool:
        """Wait (event-driven) until the job reaches ``state``; False on timeout."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        if self.job_state(job_id) == state:
            return True
        fut = loop.create_future()

        def on_change(job: Job, old: str, new: str) -> None:
            if job.id == job_id and new == state and not fut.done():
                fut.set_result(True)

        self.cluster.listeners.append(on_change)
        try:
            await asyncio.wait_for(fut, max(0.0, deadline - loop.time()))
            return True
        except asyncio.TimeoutError:
            return self.job_state(job_id) == state
        finally:
            self.cluster.listeners.remove(on_change)

    def info(self) -> dict[str, Any]:
        states = collections.Counter(j.state for j in self.cluster.jobs.values())
        return {"version": self.version, "url": self.url, "down": self.is_down, "latency": self.latency,
                "auto_trigger": self.cluster.auto_trigger, "jobs": len(self.cluster.jobs),
                "job_states": dict(states), "not_elasticsearch": self.not_elasticsearch,
                "timing": vars(self.cluster.timing), "security": self.security.enabled,
                "stat_fields": list(STAT_FIELDS)}


def _check_timing(timing: dict[str, Any]) -> None:
    unknown = set(timing) - set(TIMING_KEYS)
    if unknown:
        raise TypeError(f"unknown timing option(s) {sorted(unknown)}; known: {list(TIMING_KEYS)}")
