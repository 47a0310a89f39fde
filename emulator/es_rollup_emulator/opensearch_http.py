"""The HTTP face of the OpenSearch dialect (opensearch.py): routes, parameters and envelopes as the real
OpenSearch 2.19 node with index-management answers them (``../shared/opensearch/transcript.md``).

* ``GET /`` names ``version.distribution: opensearch``; no answer carries ``X-Elastic-Product``;
* ``_plugins/_rollup/jobs`` (and the legacy ``_opendistro/_rollup/jobs``): PUT/GET/DELETE ``<id>``,
  GET (list: ``size``, ``from``), POST ``<id>/_start`` and ``<id>/_stop`` (no parameters: 400
  ``unrecognized parameters``), GET ``<ids>/_explain``;
* any other path: 400 ``{"error": "no handler found for uri [..] and method [..]"}``;
* ``/_emulator/trigger/<id>`` and ``/_emulator/fail/<id>?reason=`` fire or fail a run (not logged).

Use: ``OpenSearchEmulator`` (async), or ``EmulatorThread(distribution="opensearch")``, or
``python -m es_rollup_emulator --distribution opensearch --version 2.19.4``.
"""

from __future__ import annotations

import json
import time
import urllib.parse
from typing import Any

from aiohttp import web

from .opensearch import OpenSearchCluster, OpenSearchError
from .server import RequestRecord

PREFIXES = ("_plugins", "_opendistro")
GLOBAL = frozenset({"pretty", "human", "error_trace", "filter_path"})


def _unrecognized(path: str, names: list[str]) -> OpenSearchError:
    plural = "s" if len(names) > 1 else ""
    listed = ", ".join(f"[{n}]" for n in sorted(names))
    return OpenSearchError(400, {"type": "illegal_argument_exception",
                                 "reason": f"request [{path}] contains unrecognized parameter{plural}: {listed}"})


class OpenSearchEmulator:
    def __init__(self, version: str = "2.19.4", cluster_name: str = "opensearch", **timing: Any):
        self.cluster = OpenSearchCluster(version=version, **timing)
        self.version, self.cluster_name = version, cluster_name
        self.cluster_uuid = "os" + str(abs(hash(cluster_name)))[:20]
        self.host, self.port = "127.0.0.1", 0
        self._log: list[RequestRecord] = []
        self._runner: web.AppRunner | None = None

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    async def start(self, host: str = "127.0.0.1", port: int = 0) -> "OpenSearchEmulator":
        self.host = host
        app = web.Application(client_max_size=100 * 1024 * 1024)
        app.router.add_route("*", "/{tail:.*}", self.handle)
        self._runner = web.AppRunner(app, handle_signals=False, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, host, port, reuse_address=True, backlog=1024)
        await site.start()
        self.port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
        return self

    async def close(self) -> None:
        for job in self.cluster.jobs.values():
            if job.run is not None:
                job.run.cancel()
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    async def __aenter__(self) -> "OpenSearchEmulator":
        return await self.start()

    async def __aexit__(self, *exc: Any) -> None:
        await self.close()

    # --- control (also through EmulatorThread) ----------------------------------------------
    def requests(self, method: str | None = None, path: str | None = None) -> list[RequestRecord]:
        return [r for r in self._log if (not method or r.method == method.upper()) and (not path or r.path == path)]

    def count(self, method: str | None = None, path: str | None = None) -> int:
        return len(self.requests(method, path))

    def clear_requests(self) -> None:
        self._log.clear()

    def trigger(self, job_id: str) -> bool:
        return self.cluster.trigger(job_id)

    def fail_job(self, job_id: str, reason: str) -> None:
        self.cluster.fail(job_id, reason)

    def job_ids(self) -> list[str]:
        return sorted(self.cluster.jobs)

    def job_state(self, job_id: str) -> str | None:
        """What the operator would call the job: started (enabled), stopping (disabled with a run still
        going), stopped, or the metadata's finished/failed (no refresh lag: the emulator's own truth)."""
        job = self.cluster.jobs.get(job_id)
        if job is None:
            return None
        status = (job.current or {}).get("status")
        if status in ("finished", "failed"):
            return str(status)
        if job.rollup["enabled"]:
            return "started"
        return "stopping" if job.run is not None and job.stop_at is not None else "stopped"

    def seed_jobs(self, n: int, prefix: str = "job-", state: str = "stopped", *, stop_delay: float | None = None,
                  pages_per_run: int | None = 5, page_duration: float | None = None, **_ignored: Any) -> list[str]:
        """``n`` jobs ``<prefix>0000..`` on a cron, created ``stopped`` (disabled), ``started`` (enabled)
        or ``indexing`` (enabled, a run in progress). The timing applies to the whole emulator:
        ``stop_delay`` is how long a page in flight goes on after a _stop, ``page_duration`` a page."""
        c = self.cluster
        if stop_delay is not None:
            c.stop_lag_s = stop_delay
        if page_duration is not None:
            c.page_s = page_duration
        c.pages_per_run = pages_per_run
        ids = [f"{prefix}{i:04d}" for i in range(n)]
        for job_id in ids:
            c.put(job_id, {"rollup": {
                "enabled": state != "stopped", "schedule": {"cron": {"expression": "*/5 * * * *", "timezone": "UTC"}},
                "description": "seeded", "source_index": "seed-src", "target_index": f"seed-{job_id}", "page_size": 1000,
                "delay": 0, "continuous": True,
                "dimensions": [{"date_histogram": {"source_field": "@timestamp", "fixed_interval": "1h", "timezone": "UTC"}}],
                "metrics": [{"source_field": "value", "metrics": [{"min": {}}, {"max": {}}]}]}}, None, None)
            if state == "indexing":
                c.trigger(job_id)
                c._set_meta(c.jobs[job_id], status="started")  # the run's first write
                c.jobs[job_id].metadata[-1] = (0.0, c.jobs[job_id].metadata[-1][1])  # seeded: visible at once
        return ids

    def info(self) -> dict[str, Any]:
        return {"name": f"{self.cluster_name}-0", "cluster_name": self.cluster_name, "cluster_uuid": self.cluster_uuid,
                "version": {"distribution": "opensearch", "number": self.version, "build_type": "emulator",
                            "build_hash": "0" * 40, "build_date": "2025-11-01T00:00:00Z", "build_snapshot": False,
                            "lucene_version": "9.12.3", "minimum_wire_compatibility_version": "7.10.0",
                            "minimum_index_compatibility_version": "7.0.0"},
                "tagline": "The OpenSearch Project: https://opensearch.org/"}

    # --- HTTP ---------------------------------------------------------------------------------
    async def handle(self, request: web.Request) -> web.Response:
        t0 = time.monotonic()
        path = request.path
        query = {k: v for k, v in request.query.items()}
        parts = [urllib.parse.unquote(p) for p in request.raw_path.split("?", 1)[0].strip("/").split("/") if p]
        raw = await request.read()
        if parts[:1] == ["_emulator"]:
            return self._control(parts[1:], query)
        try:
            body = json.loads(raw) if raw else None
        except ValueError:
            body = None
        try:
            status, out = self._route(request.method, path, parts, query, body)
        except OpenSearchError as e:
            status, out = e.status, e.body()
        self._log.append(RequestRecord(request.method, path, query, status, time.time(), None, time.monotonic() - t0,
                                       raw_path=request.raw_path))
        return web.Response(status=status, body=json.dumps(out).encode(), content_type="application/json", charset="UTF-8")

    def _control(self, parts: list[str], query: dict[str, str]) -> web.Response:
        if len(parts) == 2 and parts[0] == "trigger":
            return web.json_response({"triggered": self.trigger(parts[1])})
        if len(parts) == 2 and parts[0] == "fail":
            self.fail_job(parts[1], query.get("reason", "failed"))
            return web.json_response({"failed": parts[1]})
        return web.json_response({"error": "unknown control call"}, status=404)

    def _route(self, method: str, path: str, parts: list[str], query: dict[str, str], body: Any) -> tuple[int, Any]:
        def params(*allowed: str) -> None:
            extra = [k for k in query if k not in allowed and k not in GLOBAL]
            if extra:
                raise _unrecognized(path, extra)

        c = self.cluster
        if not parts and method in ("GET", "HEAD"):
            params()
            return 200, self.info()
        rollup = len(parts) >= 3 and parts[0] in PREFIXES and parts[1:3] == ["_rollup", "jobs"]
        rest = parts[3:] if rollup else None
        if rest == [] and method == "GET":
            params("size", "from", "search", "sortField", "sortDirection")
            return 200, c.list_jobs(int(query.get("size", 20)), int(query.get("from", 0)))
        if rest is not None and len(rest) == 1:
            job_id = rest[0]
            if method == "PUT":
                params("if_seq_no", "if_primary_term")
                seq, term = query.get("if_seq_no"), query.get("if_primary_term")
                return c.put(job_id, body, int(seq) if seq is not None else None, int(term) if term is not None else None)
            if method == "GET":
                params()
                return 200, c.get(job_id)
            if method == "DELETE":
                params("refresh")
                return 200, c.delete(job_id)
        if rest is not None and len(rest) == 2 and rest[1] in ("_start", "_stop") and method == "POST":
            params()
            (c.start if rest[1] == "_start" else c.stop)(rest[0])
            return 200, {"acknowledged": True}
        if rest is not None and len(rest) == 2 and rest[1] == "_explain" and method == "GET":
            params()
            return 200, c.explain(rest[0].split(","))
        raise OpenSearchError(400, f"no handler found for uri [{path}] and method [{method}]")
