"""Shared reads of one connection: every job on it is observed through one ``GET _rollup/job/_all``.

* the *snapshot*: a job that needs a fresh look asks for "a snapshot whose read was sent after
  time t", and every job asking at the same moment shares one request (``snapshot``);
* the *poller*: while some job waits for a state change (a stop without server-side wait, a start
  that waits for a stop to finish), the snapshot is read once per ``poll_interval`` for all of them
  together (``wait_for``).

Knows nothing of clients or RollupJob resources: ``fetch`` does the read.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from dataclasses import dataclass, field
from typing import Awaitable, Callable

from rollup_operator.job.observations import Failure, JobAbsent, JobObserved, Observation


@dataclass
class Snapshot:
    started_at: float  # monotonic time the read was sent
    jobs: dict[str, JobObserved | Failure] = field(default_factory=dict)  # a Failure: that entry was malformed (answers.py)
    failure: Failure | None = None

    def observe(self, job_id: str) -> Observation:
        if self.failure is not None:
            return self.failure
        return self.jobs.get(job_id) or JobAbsent()


#: What a waiter waits for: a predicate on the job's observation.
Until = Callable[[Observation], bool]


class SharedReads:
    def __init__(self, fetch: Callable[[float], Awaitable[Snapshot]], *, poll_interval: float, coalesce_window: float, name: str):
        self._fetch = fetch
        self.poll_interval = poll_interval
        self.coalesce_window = coalesce_window
        self.name = name
        self.last: Snapshot | None = None
        self._inflight: asyncio.Future[Snapshot] | None = None
        self._inflight_sent: float | None = None
        self._watchers: dict[str, list[tuple[Until, asyncio.Future[Observation]]]] = {}
        self._poller: asyncio.Task[None] | None = None

    async def snapshot(self, after: float) -> Snapshot:
        """A snapshot whose read was sent at or after ``after`` (monotonic), shared with other callers.

        A read waits ``coalesce_window`` before it is sent, and everyone who asks meanwhile rides
        on it; a caller whose ``after`` is later than a read already sent waits for the next one.
        """
        loop = asyncio.get_running_loop()
        while True:
            snap = self.last
            if snap is not None and snap.started_at >= after:
                return snap
            if self._inflight is not None:
                sent = self._inflight_sent
                if sent is None or sent >= after:
                    return await asyncio.shield(self._inflight)
                with contextlib.suppress(Exception):  # the next round fetches again
                    await asyncio.shield(self._inflight)
                continue
            fut: asyncio.Future[Snapshot] = loop.create_future()
            self._inflight, self._inflight_sent = fut, None
            try:
                if self.coalesce_window:
                    await asyncio.sleep(self.coalesce_window)  # let simultaneous askers join
                self._inflight_sent = time.monotonic()
                snap = await self._fetch(self._inflight_sent)
                self.last = snap
                fut.set_result(snap)
            except BaseException as e:
                fut.set_exception(e)
                fut.exception()  # mark retrieved
                raise
            finally:
                self._inflight = None
            return snap

    def latest(self, job_id: str) -> Observation | None:
        """The job as the last snapshot saw it (None before any read)."""
        return self.last.observe(job_id) if self.last is not None else None

    async def wait_for(self, job_id: str, done: Until, timeout: float) -> Observation | None:
        """Wait until the job's observation satisfies ``done`` (checked on the shared poll), or time out.
        A failed read ends the wait too (with the failure)."""
        fut: asyncio.Future[Observation] = asyncio.get_running_loop().create_future()
        entry = (done, fut)
        self._watchers.setdefault(job_id, []).append(entry)
        if self._poller is None or self._poller.done():
            self._poller = asyncio.create_task(self._poll(), name=f"poll {self.name}")
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

    def close(self) -> None:
        if self._poller:
            self._poller.cancel()
        for waiters in self._watchers.values():
            for _, fut in waiters:
                fut.cancel()
