"""An in-memory rollup API: the engine port the job layer calls (engine/dialect.RollupDialect),
with no HTTP server, socket or thread, for orchestration tests that run in milliseconds.

It keeps the rollup job state machine of docs/reference/elasticsearch-rollup-api.md (stopped ->
started -> indexing; a stop of an indexing job stays ``stopping`` for ``stop_delay`` seconds; a
waiting stop that outlasts its timeout is ``StopTimedOut``; start while stopping is refused;
delete of a running job is refused), answering with the same outcome types the real gateway's
classification gives (observations.py). The emulator (emulator/) stays the fake for everything
that goes over HTTP: status codes, bodies and headers are its business, not this one's.

    api = FakeRollupApi()
    ctl = Controller(kube, dialects=api.dialect)   # every connection talks to ``api``
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass, field
from typing import Any

from rollup_operator.job.observations import Done, JobAbsent, JobObserved, Outcome, StopTimedOut, WrongState


@dataclass
class FakeJob:
    state: str = "stopped"
    config: dict[str, Any] = field(default_factory=dict)
    stop_delay: float = 0.0
    stopping_until: float | None = None
    stats: dict[str, Any] = field(default_factory=lambda: {"pages_processed": 0, "documents_processed": 0})


class FakeRollupApi:
    engine = "elasticsearch"

    def __init__(self, version: str = "8.17.0") -> None:
        self.version = version
        self.jobs: dict[str, FakeJob] = {}
        self.calls: list[tuple[str, str]] = []  # (api, job id) in call order; reads are ("list", "")
        self.deprecation_warning: str | None = None

    def dialect(self, _client: Any, _engine: str) -> "FakeRollupApi":
        """The ``dialects`` factory a Connection takes: every client gets this one API."""
        return self

    # --- test controls ----------------------------------------------------------------------

    def add_job(self, job_id: str, state: str = "stopped", *, stop_delay: float = 0.0) -> None:
        self.jobs[job_id] = FakeJob(state=state, config={"id": job_id}, stop_delay=stop_delay)

    def job_state(self, job_id: str) -> str | None:
        job = self.jobs.get(job_id)
        return self._settle(job).state if job else None

    def oob_stop(self, job_id: str) -> None:
        """Stop a job behind the operator's back."""
        self.jobs[job_id].state = "stopped"

    def count(self, api: str, job_id: str = "") -> int:
        return sum(1 for a, j in self.calls if a == api and (not job_id or j == job_id))

    def _settle(self, job: FakeJob) -> FakeJob:
        if job.state == "stopping" and job.stopping_until is not None and time.monotonic() >= job.stopping_until:
            job.state, job.stopping_until = "stopped", None
        return job

    # --- the port ---------------------------------------------------------------------------

    async def info(self) -> dict[str, Any]:
        self.calls.append(("info", ""))
        return {"version": {"number": self.version}, "cluster_uuid": "fake-cluster"}

    async def list_jobs(self) -> dict[str, JobObserved]:
        self.calls.append(("list", ""))
        await asyncio.sleep(0)
        return {i: JobObserved(self._settle(j).state, dict(j.stats), dict(j.config)) for i, j in self.jobs.items()}

    async def stop(self, job_id: str, *, wait: bool, timeout: str, timeout_s: float, request_timeout: float) -> Outcome:
        self.calls.append(("stop", job_id))
        job = self.jobs.get(job_id)
        if job is None:
            return JobAbsent()
        self._settle(job)
        if job.state == "indexing" and job.stop_delay > 0:
            job.state, job.stopping_until = "stopping", time.monotonic() + job.stop_delay
        elif job.state in ("started", "indexing"):
            job.state = "stopped"
        if wait and job.state == "stopping":
            assert job.stopping_until is not None
            left = job.stopping_until - time.monotonic()
            await asyncio.sleep(min(max(left, 0.0), timeout_s))
            if self._settle(job).state == "stopping":
                return StopTimedOut("stopping")
        return Done()

    async def start(self, job_id: str) -> Outcome:
        self.calls.append(("start", job_id))
        job = self.jobs.get(job_id)
        if job is None:
            return JobAbsent()
        if self._settle(job).state == "stopping":
            return WrongState("stopping", f"Cannot start task for Rollup Job [{job_id}] because state was [STOPPING]")
        if job.state == "stopped":
            job.state = "started"
        return Done()

    async def create(self, job_id: str, config: dict[str, Any]) -> Outcome:
        self.calls.append(("create", job_id))
        self.jobs[job_id] = FakeJob(config={"id": job_id, **config})
        return Done()

    async def delete(self, job_id: str) -> Outcome:
        self.calls.append(("delete", job_id))
        job = self.jobs.get(job_id)
        if job is None:
            return JobAbsent()
        if self._settle(job).state != "stopped":
            return WrongState(job.state, f"Could not delete job [{job_id}] because indexer state is [{job.state.upper()}].")
        del self.jobs[job_id]
        return Done()

    async def update(self, job_id: str, config: dict[str, Any], seen: JobObserved) -> Outcome:
        self.calls.append(("update", job_id))
        return WrongState(seen.state, "Elasticsearch rollup jobs cannot be updated")
