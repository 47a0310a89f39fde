"""Cluster state and the rollup job state machine, driven by event-loop timers.

States (``job_state``): ``stopped`` -> (start) ``started`` -> (trigger) ``indexing`` -> after
``pages_per_run`` pages back to ``started``. A stop while ``indexing`` gives ``stopping`` until the
page in flight ends (or exactly ``stop_delay`` seconds when that is set), then ``stopped``.
``aborting`` is what a deleted job (and anyone still waiting on it) sees.

Everything runs on one asyncio loop; no method here is thread-safe, the emulator front ends
marshal calls into the loop. Time only advances through ``loop.call_later`` timers: one timer per
job for the page in flight or the pending stop, one for its next cron firing — no polling.

Timing knobs (global defaults in :class:`Timing`, per-job overrides via
:meth:`Cluster.set_job_timing`):

``page_duration``  seconds one page (search + bulk) takes
``docs_per_page``  source documents one page processes
``pages_per_run``  pages per triggered run before going back to ``started`` (None: endless)
``stop_delay``     if set, a stop of an indexing job stays ``stopping`` exactly this long
"""

from __future__ import annotations

import asyncio
import base64
import os
import random
from dataclasses import dataclass, field, fields, replace
from typing import Any, Callable

from .cron import CronError, CronSchedule, parse_cron
from .errors import ESError, RawResponse, generic_exception, not_found, runtime_exception, status_exception, illegal_argument
from .indices import IndexStore
from .jobconfig import RollupJobConfig
from .versions import VersionProfile

STATES = ("stopped", "started", "indexing", "stopping", "aborting")
STAT_FIELDS = (
    "pages_processed", "documents_processed", "rollups_indexed", "trigger_count",
    "index_time_in_ms", "index_total", "index_failures", "search_time_in_ms", "search_total",
    "search_failures", "processing_time_in_ms", "processing_total",
)
BASE_POSITION_MS = 1704067200000  # 2024-01-01T00:00:00Z


@dataclass
class Timing:
    page_duration: float = 1.0
    docs_per_page: int = 100
    pages_per_run: int | None = 3
    stop_delay: float | None = None

    def merged(self, overrides: dict[str, Any]) -> "Timing":
        return replace(self, **overrides) if overrides else self


TIMING_KEYS = tuple(f.name for f in fields(Timing))


@dataclass(eq=False)
class Job:
    config: RollupJobConfig
    task_id: int
    state: str = "stopped"
    stats: dict[str, int] = field(default_factory=lambda: dict.fromkeys(STAT_FIELDS, 0))
    position: dict[str, Any] | None = None
    overrides: dict[str, Any] = field(default_factory=dict)
    pages_in_run: int = 0
    page_handle: asyncio.TimerHandle | None = None
    stop_handle: asyncio.TimerHandle | None = None
    cron_handle: asyncio.TimerHandle | None = None
    waiters: list[asyncio.Future] = field(default_factory=list)
    config_json: str = ""
    schedule: CronSchedule | None = None
    state_changed_at: float = 0.0

    @property
    def id(self) -> str:
        return self.config.id

    def cancel_timers(self) -> None:
        for h in (self.page_handle, self.stop_handle, self.cron_handle):
            if h is not None:
                h.cancel()
        self.page_handle = self.stop_handle = self.cron_handle = None


class Cluster:
    """In-memory cluster: indices, templates, rollup jobs, and the clock that drives them."""

    def __init__(self, profile: VersionProfile, loop: asyncio.AbstractEventLoop | None = None,
                 timing: Timing | None = None, auto_trigger: bool = True):
        self.profile = profile
        self._loop = loop
        self.timing = timing or Timing()
        self.auto_trigger = auto_trigger
        self.indices = IndexStore()
        self.jobs: dict[str, Job] = {}
        self.node_id = base64.urlsafe_b64encode(os.urandom(16)).decode().rstrip("=")[:22]
        self._next_task_id = random.randint(1000, 9000)
        self.listeners: list[Callable[[Job, str, str], None]] = []

    @property
    def loop(self) -> asyncio.AbstractEventLoop:
        if self._loop is None:
            self._loop = asyncio.get_running_loop()
        return self._loop

    # -- state transitions --------------------------------------------------------------------
    def _set_state(self, job: Job, new: str) -> None:
        old = job.state
        job.state = new
        job.state_changed_at = self.loop.time()
        if new == "stopped":
            waiters, job.waiters = job.waiters, []
            for w in waiters:
                if not w.done():
                    w.set_result(True)
            if job.cron_handle is not None:
                job.cron_handle.cancel()
                job.cron_handle = None
        if old != new:
            for listener in list(self.listeners):
                listener(job, old, new)

    def timing_for(self, job: Job) -> Timing:
        return self.timing.merged(job.overrides)

    def _arm_cron(self, job: Job) -> None:
        if not self.auto_trigger or job.schedule is None or job.state == "stopped":
            return
        if job.cron_handle is not None:
            job.cron_handle.cancel()
        delay = job.schedule.seconds_until_next()
        if delay is None:
            job.cron_handle = None
            return
        job.cron_handle = self.loop.call_later(delay, self._cron_fired, job)

    def _cron_fired(self, job: Job) -> None:
        job.cron_handle = None
        if self.jobs.get(job.id) is not job:
            return
        self.trigger_job(job)
        self._arm_cron(job)

    def trigger_job(self, job: Job) -> bool:
        """The schedule fired: a ``started`` job begins a run; anything else ignores it."""
        if job.state != "started":
            return False
        job.stats["trigger_count"] += 1
        job.pages_in_run = 0
        from .rollup_data import materialize  # a run writes the rollup documents of the complete buckets

        materialize(self.indices, job)
        self._set_state(job, "indexing")
        self._schedule_page(job)
        return True

    def _schedule_page(self, job: Job) -> None:
        t = self.timing_for(job)
        job.page_handle = self.loop.call_later(max(0.0, t.page_duration), self._page_done, job)

    def _account_page(self, job: Job) -> None:
        t = self.timing_for(job)
        ms = int(t.page_duration * 1000)
        s = job.stats
        s["pages_processed"] += 1
        s["documents_processed"] += t.docs_per_page
        s["rollups_indexed"] += min(job.config.page_size, t.docs_per_page)
        s["search_total"] += 1
        s["index_total"] += 1
        s["processing_total"] += 1
        s["search_time_in_ms"] += ms // 2
        s["index_time_in_ms"] += (ms * 2) // 5
        s["processing_time_in_ms"] += ms - ms // 2 - (ms * 2) // 5
        job.pages_in_run += 1
        step = job.config.groups.date_histogram.interval_ms if job.config.groups else 3600_000
        field_name = job.config.groups.date_histogram.field if job.config.groups else "timestamp"
        prev = (job.position or {}).get(f"{field_name}.date_histogram", BASE_POSITION_MS)
        pos: dict[str, Any] = {f"{field_name}.date_histogram": prev + step * min(job.config.page_size, 1000)}
        if job.config.groups and job.config.groups.terms:
            for f in job.config.groups.terms.fields:
                pos[f"{f}.terms"] = f"value-{s['pages_processed']}"
        job.position = pos

    def _page_done(self, job: Job) -> None:
        job.page_handle = None
        if self.jobs.get(job.id) is not job and job.state != "aborting":
            return
        self._account_page(job)
        if job.state == "stopping":
            if job.stop_handle is None:
                self._set_state(job, "stopped")
            return
        if job.state == "aborting":
            return
        t = self.timing_for(job)
        if t.pages_per_run is not None and job.pages_in_run >= t.pages_per_run:
            self._set_state(job, "started")
            return
        self._schedule_page(job)

    def _stop_delay_done(self, job: Job) -> None:
        job.stop_handle = None
        if job.state == "stopping":
            if job.page_handle is not None:
                job.page_handle.cancel()
                job.page_handle = None
                self._account_page(job)
            self._set_state(job, "stopped")

    # -- the five rollup actions ----------------------------------------------------------------
    def check_rollup_usage(self) -> None:
        """8.15+: refuse new jobs when no job exists and no index mapping has ``_meta._rollup``."""
        if self.profile.requires_rollup_usage and not self.jobs and not self.indices.has_rollup_usage():
            raise illegal_argument(
                "new rollup jobs are not allowed in clusters that don't have any rollup usage, "
                "since rollup has been deprecated"
            )

    def put_job(self, config: RollupJobConfig) -> None:
        """TransportPutRollupJobAction after validation: rollup index handling, then the task."""
        self._ensure_rollup_index(config)
        if config.id in self.jobs:
            raise ESError("status_exception",
                          f"Cannot create job [{config.id}] because it has already been created (task exists)", 409,
                          caused_by=ESError("resource_already_exists_exception",
                                            f"task with id {{{config.id}}} already exist", 400))
        self._add(config)

    def _ensure_rollup_index(self, config: RollupJobConfig) -> None:
        name = config.rollup_index
        ix = self.indices.indices.get(name)
        conf = config.to_dict()
        if ix is None:
            mappings = {
                "_meta": {"rollup-version": self.profile.rollup_version_meta, "_rollup": {config.id: conf}},
                "dynamic_templates": [
                    {"strings": {"match_mapping_type": "string", "mapping": {"type": "keyword"}}},
                    {"date_histograms": {"path_match": "*.date_histogram.timestamp", "mapping": {"type": "date"}}},
                ],
            }
            self.indices.create(name, mappings)
            return
        meta = ix.mappings.get("_meta")
        if not isinstance(meta, dict):
            raise runtime_exception(
                "Rollup data cannot be added to existing indices that contain non-rollup data (expected to find "
                f"_meta key in mapping of rollup index [{name}] but not found)."
            )
        if not isinstance(meta.get("_rollup"), dict):
            raise runtime_exception(
                "Rollup data cannot be added to existing indices that contain non-rollup data (expected to find "
                f"rollup meta key [_rollup] in mapping of rollup index [{name}] but not found)."
            )
        if meta["_rollup"].get(config.id) is not None:
            raise status_exception(
                f"Cannot create rollup job [{config.id}] because job was previously created (existing metadata).", 409
            )
        meta["_rollup"][config.id] = conf

    def _add(self, config: RollupJobConfig, overrides: dict[str, Any] | None = None) -> Job:
        self._next_task_id += 1
        job = Job(config, self._next_task_id, overrides=dict(overrides or {}))
        job.config_json = config.to_json()
        try:
            job.schedule = parse_cron(config.cron)
        except CronError:
            job.schedule = None
        self.jobs[config.id] = job
        return job

    def get_jobs(self, job_id: str) -> list[Job]:
        if job_id in ("_all", "*"):
            return list(self.jobs.values())
        job = self.jobs.get(job_id)
        return [job] if job else []

    def start_job(self, job_id: str) -> dict[str, Any]:
        job = self.jobs.get(job_id)
        if job is None:
            raise not_found(f"Task for Rollup Job [{job_id}] not found")
        prev = job.state
        if prev in ("started", "indexing") and not self.profile.start_started_is_error:
            return {"started": True}
        if prev != "stopped":
            raise generic_exception(f"Cannot start task for Rollup Job [{job_id}] because state was [{prev.upper()}]")
        self._set_state(job, "started")
        self._arm_cron(job)
        return {"started": True}

    def stop_job(self, job_id: str) -> Job:
        job = self.jobs.get(job_id)
        if job is None:
            raise not_found(f"Task for Rollup Job [{job_id}] not found")
        if job.state == "started":
            self._set_state(job, "stopped")
        elif job.state == "indexing":
            self._set_state(job, "stopping")
            delay = self.timing_for(job).stop_delay
            if delay is not None:
                job.stop_handle = self.loop.call_later(max(0.0, delay), self._stop_delay_done, job)
        elif job.state in ("stopped", "stopping"):
            pass
        else:
            raise generic_exception(f"Cannot stop task for Rollup Job [{job_id}] because state was [{job.state.upper()}]")
        return job

    def delete_job(self, job_id: str) -> dict[str, Any]:
        job = self.jobs.get(job_id)
        if job is None:
            raise not_found(f"the task with id [{job_id}] doesn't exist")
        if job.state != "stopped":
            raise RawResponse(500, {
                "task_failures": [{
                    "task_id": job.task_id,
                    "node_id": self.node_id,
                    "status": "INTERNAL_SERVER_ERROR",
                    "reason": {
                        "type": "illegal_state_exception",
                        "reason": f"Could not delete job [{job_id}] because indexer state is "
                                  f"[{job.state.upper()}].  Job must be [STOPPED] before deletion.",
                    },
                }],
                "acknowledged": False,
            })
        self._remove(job)
        return {"acknowledged": True}

    def _remove(self, job: Job) -> None:
        self.jobs.pop(job.id, None)
        job.cancel_timers()
        self._set_state(job, "aborting")

    async def wait_stopped(self, job: Job, timeout: float, poll_emulation: bool = False) -> bool:
        """Wait (event-driven) until ``job`` is stopped or ``timeout`` seconds pass.

        With ``poll_emulation`` the answer is delayed to the next instant at which the real
        server's ``awaitBusy`` loop (sleeps 1, 2, 4 .. 1000 ms) would have looked."""
        if job.state == "stopped":
            return True
        if timeout <= 0:
            return False
        start = self.loop.time()
        fut = self.loop.create_future()
        job.waiters.append(fut)
        try:
            done, _ = await asyncio.wait({fut}, timeout=timeout)
        finally:
            if fut in job.waiters:
                job.waiters.remove(fut)
        if not done:
            return job.state == "stopped"
        if fut.cancelled() or fut.exception() is not None:
            raise ConnectionResetError("node restarted")
        if poll_emulation:
            elapsed = self.loop.time() - start
            t, step = 0.0, 0.001
            while t + step < timeout and t < elapsed:
                t += step
                step = min(1.0, step * 2)
            if t < elapsed:
                t = timeout
            if t > elapsed:
                await asyncio.sleep(t - elapsed)
        return True

    # -- test hooks -----------------------------------------------------------------------------
    def add_job(self, config: RollupJobConfig, state: str = "stopped", overrides: dict[str, Any] | None = None,
                ensure_index: bool = True) -> Job:
        if config.id in self.jobs:
            raise ValueError(f"job [{config.id}] exists")
        if ensure_index:
            ix = self.indices.indices.get(config.rollup_index)
            if ix is None or ix.rollup_meta is None or config.id not in ix.rollup_meta:
                try:
                    self._ensure_rollup_index(config)
                except ESError:
                    pass
        job = self._add(config, overrides)
        if state not in ("stopped", "started", "indexing", "stopping"):
            raise ValueError(f"cannot seed a job in state {state!r}")
        if state != "stopped":
            self._set_state(job, "started")
            self._arm_cron(job)
        if state in ("indexing", "stopping"):
            self.trigger_job(job)
        if state == "stopping":
            self.stop_job(job.id)
        return job

    def force_state(self, job_id: str, state: str) -> None:
        """Put a job into any state without side effects (e.g. ``aborting`` for error paths)."""
        if state not in STATES:
            raise ValueError(state)
        job = self.jobs[job_id]
        if job.page_handle is not None and state not in ("indexing", "stopping"):
            job.page_handle.cancel()
            job.page_handle = None
        self._set_state(job, state)

    def oob_delete(self, job_id: str) -> None:
        self._remove(self.jobs[job_id])

    def restart(self) -> None:
        """What a node restart does to persisted tasks: indexing -> started,
        stopping/aborting -> stopped, stats reset (in memory only)."""
        for job in self.jobs.values():
            job.cancel_timers()
            waiters, job.waiters = job.waiters, []
            for w in waiters:
                if not w.done():
                    w.cancel()
            if job.state == "indexing":
                job.state = "started"
            elif job.state in ("stopping", "aborting"):
                job.state = "stopped"
            job.stats = dict.fromkeys(STAT_FIELDS, 0)
            job.pages_in_run = 0
            if job.state == "started":
                self._arm_cron(job)

    def close(self) -> None:
        for job in self.jobs.values():
            job.cancel_timers()
            for w in job.waiters:
                if not w.done():
                    w.cancel()

    # -- rendering --------------------------------------------------------------------------------
    def status_json(self, job: Job) -> str:
        parts = [f'"job_state":"{job.state}"']
        if job.position is not None:
            import json
            parts.append('"current_position":' + json.dumps(job.position, separators=(",", ":")))
        if self.profile.status_has_upgraded_doc_id:
            parts.append('"upgraded_doc_id":true')
        return "{" + ",".join(parts) + "}"

    def job_json(self, job: Job) -> str:
        stats = ",".join(f'"{k}":{v}' for k, v in job.stats.items())
        return f'{{"config":{job.config_json},"status":{self.status_json(job)},"stats":{{{stats}}}}}'

    def jobs_json(self, jobs: list[Job]) -> str:
        return '{"jobs":[' + ",".join(self.job_json(j) for j in jobs) + "]}"
