"""The OpenSearch rollup dialect (index-management 2.19): job documents, metadata, runs. No HTTP here
(opensearch_http.py serves it).

Held to the real node (tests/opensearch/test_emulator_vs_real.py replays the same requests against
both): the job document as GET shows it, ``_version``/``_seq_no`` on every write, the metadata that
``_explain`` reads through a search (so it lags the job document by ``refresh_s``), ``_stop`` that
answers at once while a page in flight goes on for ``stop_lag_s``, the status model
(init/started/stopped/finished/failed/retry), and the error answers (``../shared/opensearch/``).

Runs start only through :meth:`OpenSearchCluster.trigger` (the real scheduler fires at interval or
cron boundaries, a minute at the least); each processes ``pages_per_run`` pages (None: endless) of
``docs_per_page`` docs, ``page_s`` apart. A one-shot (``continuous: false``) job then finishes and
disables itself; a continuous one stays started.
"""

from __future__ import annotations

import asyncio
import copy
import time
import uuid
from dataclasses import dataclass, field
from typing import Any

CONFIG_INDEX = ".opendistro-ism-config"
STATS = ("pages_processed", "documents_processed", "rollups_indexed", "index_time_in_millis", "search_time_in_millis")
IMMUTABLE = ("continuous", "dimensions", "metrics", "source_index", "target_index")


class OpenSearchError(Exception):
    """An OpenSearch error answer: ``status`` and the ``error`` object."""

    def __init__(self, status: int, error: dict[str, Any] | str):
        super().__init__(str(error))
        self.status, self.error = status, error

    def body(self) -> dict[str, Any]:
        if isinstance(self.error, str):
            return {"error": self.error}
        return {"error": {"root_cause": [dict(self.error)], **self.error}, "status": self.status}


def status_exception(status: int, reason: str) -> OpenSearchError:
    return OpenSearchError(status, {"type": "status_exception", "reason": reason})


def no_config_index() -> OpenSearchError:
    return OpenSearchError(404, {"type": "index_not_found_exception", "reason": f"no such index [{CONFIG_INDEX}]",
                          "index": CONFIG_INDEX, "resource.id": CONFIG_INDEX, "resource.type": "index_expression",
                          "index_uuid": "_na_"})


def _ms() -> int:
    return int(time.time() * 1000)


def _dimension(dim: dict[str, Any]) -> dict[str, Any]:
    """A dimension as the server stores it (target_field filled in, date_histogram's format)."""
    (kind, d), = dim.items()
    src = d.get("source_field")
    if kind == "date_histogram":
        out = {k: d[k] for k in ("fixed_interval", "calendar_interval") if d.get(k)}
        return {kind: {**out, "source_field": src, "target_field": d.get("target_field", src),
                       "timezone": d.get("timezone", "UTC"), "format": d.get("format")}}
    if kind == "histogram":
        return {kind: {"source_field": src, "target_field": d.get("target_field", src), "interval": d.get("interval")}}
    return {kind: {"source_field": src, "target_field": d.get("target_field", src)}}


def _schedule(s: dict[str, Any]) -> dict[str, Any]:
    if "cron" in s:
        c = s["cron"]
        return {"cron": {"expression": c.get("expression"), "timezone": c.get("timezone", "UTC"), "schedule_delay": 0}}
    iv = s.get("interval") or {}
    return {"interval": {"start_time": iv.get("start_time", _ms()), "period": iv.get("period"), "unit": iv.get("unit"),
                         "schedule_delay": 0}}


@dataclass
class Job:
    id: str
    rollup: dict[str, Any]  # the stored "rollup" object
    version: int = 1
    seq_no: int = 0
    #: metadata snapshots as (visible from, snapshot): _explain shows the newest one already visible
    metadata: list[tuple[float, dict[str, Any]]] = field(default_factory=list)
    run: asyncio.Task[None] | None = None
    stop_at: float | None = None  # the running page ends the run at this time (after a _stop)

    def doc(self) -> dict[str, Any]:
        return {"_id": self.id, "_version": self.version, "_seq_no": self.seq_no, "_primary_term": 1,
                "rollup": copy.deepcopy(self.rollup)}

    @property
    def current(self) -> dict[str, Any] | None:
        return self.metadata[-1][1] if self.metadata else None


class OpenSearchCluster:
    def __init__(self, *, version: str = "2.19.4", refresh_s: float = 1.0, stop_lag_s: float = 0.5, page_s: float = 0.02,
                 pages_per_run: int | None = 5, docs_per_page: int = 10):
        self.version = version
        self.refresh_s, self.stop_lag_s, self.page_s = refresh_s, stop_lag_s, page_s
        self.pages_per_run, self.docs_per_page = pages_per_run, docs_per_page
        self.jobs: dict[str, Job] = {}
        self.config_index = False  # created with the first job, as on the real server
        self.index_uuid = uuid.uuid4().hex[:22]
        self._seq = -1

    def _next_seq(self) -> int:
        self._seq += 1
        return self._seq

    def _job(self, job_id: str, missing: str = "Rollup not found") -> Job:
        if not self.config_index:
            raise no_config_index()
        job = self.jobs.get(job_id)
        if job is None:
            raise status_exception(404, missing)
        return job

    def _write(self, job: Job) -> None:
        job.version += 1
        job.seq_no = self._next_seq()

    def _set_meta(self, job: Job, **changes: Any) -> None:
        """A metadata write: visible to _explain once the config index refreshes."""
        if not job.metadata:
            md = {"rollup_id": job.id, "last_updated_time": _ms(), "status": "init", "failure_reason": None,
                  "stats": {k: 0 for k in STATS}}
            job.rollup["metadata_id"] = uuid.uuid4().hex[:20]
        else:
            md = copy.deepcopy(job.current or {})
        md.update(changes, last_updated_time=_ms())
        self._next_seq()
        job.metadata.append((time.monotonic() + self.refresh_s, md))

    # --- the API ---------------------------------------------------------------------------

    def put(self, job_id: str, body: Any, if_seq_no: int | None, if_primary_term: int | None) -> tuple[int, dict[str, Any]]:
        rollup = body.get("rollup") if isinstance(body, dict) else None
        if not isinstance(rollup, dict):
            raise OpenSearchError(400, {"type": "illegal_argument_exception", "reason": "Invalid rollup: expected a [rollup] object"})
        now = _ms()
        enabled = bool(rollup.get("enabled", True))
        stored = {"rollup_id": job_id, "enabled": enabled, "schedule": _schedule(rollup.get("schedule") or {}),
                  "last_updated_time": now, "enabled_time": now if enabled else None,
                  "description": rollup.get("description", ""), "schema_version": 21,
                  "source_index": rollup.get("source_index"), "target_index": rollup.get("target_index"),
                  "metadata_id": None, "page_size": rollup.get("page_size"), "delay": rollup.get("delay"),
                  "continuous": bool(rollup.get("continuous", False)),
                  "dimensions": [_dimension(d) for d in rollup.get("dimensions") or []],
                  "metrics": copy.deepcopy(rollup.get("metrics") or [])}
        existing = self.jobs.get(job_id) if self.config_index else None
        if if_seq_no is None or if_primary_term is None:
            if existing is not None:
                raise OpenSearchError(409, self._conflict(job_id, f"document already exists (current version [{existing.version}])"))
            self.config_index = True
            job = Job(job_id, stored, version=1, seq_no=self._next_seq())
            self.jobs[job_id] = job
            return 201, job.doc()
        job = self._job(job_id)
        if (job.seq_no, 1) != (if_seq_no, if_primary_term):
            raise OpenSearchError(409, self._conflict(job_id, f"required seqNo [{if_seq_no}], primary term [{if_primary_term}]. "
                                                       f"current document has seqNo [{job.seq_no}] and primary term [1]"))
        modified = [k for k in IMMUTABLE if stored[k] != job.rollup[k]]
        if modified:
            raise status_exception(400, f"Not allowed to modify [{', '.join(modified)}]")
        stored["metadata_id"] = job.rollup["metadata_id"]
        job.rollup = stored
        self._write(job)
        return 200, job.doc()

    def _conflict(self, job_id: str, what: str) -> dict[str, Any]:
        return {"type": "version_conflict_engine_exception", "reason": f"[{job_id}]: version conflict, {what}",
                "index": CONFIG_INDEX, "shard": "0", "index_uuid": self.index_uuid}

    def get(self, job_id: str) -> dict[str, Any]:
        return self._job(job_id).doc()

    def list_jobs(self, size: int, from_: int) -> dict[str, Any]:
        if not self.config_index:
            raise no_config_index()
        ids = sorted(self.jobs)
        docs = [{k: v for k, v in self.jobs[i].doc().items() if k != "_version"} for i in ids[from_:from_ + size]]
        return {"total_rollups": len(ids), "rollups": docs}

    def delete(self, job_id: str) -> dict[str, Any]:
        job = self._job(job_id, missing=f"Rollup {job_id} is not found")
        if job.run is not None:
            job.run.cancel()
        del self.jobs[job_id]
        return {"_index": CONFIG_INDEX, "_id": job_id, "_version": job.version + 1, "result": "deleted", "forced_refresh": True,
                "_shards": {"total": 2, "successful": 1, "failed": 0}, "_seq_no": self._next_seq(), "_primary_term": 1}

    def start(self, job_id: str) -> None:
        job = self._job(job_id)
        if job.rollup["enabled"] and job.current is None:
            return  # already enabled, nothing to change
        if not job.rollup["enabled"]:
            now = _ms()
            job.rollup.update(enabled=True, enabled_time=now, last_updated_time=now)
            self._write(job)
        status = (job.current or {}).get("status")
        if status in ("finished", "stopped", "failed"):
            self._set_meta(job, status="retry" if status == "failed" else "started", failure_reason=None)

    def stop(self, job_id: str) -> None:
        """Answers at once: metadata stopped (from init/started/stopped), then the job disabled. A page
        in flight goes on for ``stop_lag_s``."""
        job = self._job(job_id)
        if (job.current or {}).get("status") in ("init", "started", "stopped"):
            self._set_meta(job, status="stopped")
        job.rollup.update(enabled=False, enabled_time=None, last_updated_time=_ms())
        self._write(job)
        if job.run is not None and job.stop_at is None:
            job.stop_at = time.monotonic() + self.stop_lag_s

    def explain(self, ids: list[str]) -> dict[str, Any]:
        out: dict[str, Any] = {}
        now = time.monotonic()
        for i in ids:
            job = self.jobs.get(i) if self.config_index else None
            if job is None:
                out[i] = None
                continue
            seen = [md for at, md in job.metadata if at <= now]
            out[i] = {"metadata_id": job.rollup["metadata_id"] if seen else None,
                      "rollup_metadata": copy.deepcopy(seen[-1]) if seen else None}
        return out

    # --- runs (control API) -----------------------------------------------------------------

    def trigger(self, job_id: str) -> bool:
        """Fire the job's schedule now: a run starts if the job is enabled and not running."""
        job = self.jobs.get(job_id)
        if job is None or not job.rollup["enabled"] or job.run is not None:
            return False
        job.stop_at = None
        job.run = asyncio.get_running_loop().create_task(self._run(job))
        return True

    def fail(self, job_id: str, reason: str) -> None:
        """The job's run fails with ``reason`` (status failed, as the runner records it)."""
        job = self.jobs[job_id]
        if job.run is not None:
            job.run.cancel()
            job.run = None
        self._set_meta(job, status="failed", failure_reason=reason)

    async def _run(self, job: Job) -> None:
        try:
            if job.current is None or job.current.get("status") in ("finished", "stopped", "retry"):
                self._set_meta(job, status="init" if job.current is None else "started")
            pages = 0
            while self.pages_per_run is None or pages < self.pages_per_run:
                await asyncio.sleep(self.page_s)
                if job.stop_at is not None and time.monotonic() >= job.stop_at:
                    return  # the runner's next metadata write conflicts with the stop: the run ends
                stats = dict((job.current or {}).get("stats") or {})
                stats["pages_processed"] = stats.get("pages_processed", 0) + 1
                stats["documents_processed"] = stats.get("documents_processed", 0) + self.docs_per_page
                stats["rollups_indexed"] = stats.get("rollups_indexed", 0) + self.docs_per_page
                status = "stopped" if job.stop_at is not None else "started"
                self._set_meta(job, status=status, stats=stats)
                pages += 1
            if job.stop_at is None and not job.rollup["continuous"]:
                self._set_meta(job, status="finished")
                job.rollup.update(enabled=False, enabled_time=None)
                self._write(job)
        finally:
            job.run, job.stop_at = None, None
