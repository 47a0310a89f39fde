"""A work queue of keys with controller-runtime's semantics, on asyncio.

* ``add(key)``: the key needs a pass. A key is processed by at most one pass at a time; a key
  added while its pass runs is marked dirty and gets one more pass right after (adds coalesce).
* ``add_after(key, delay)``: a pass in ``delay`` seconds, unless ``add`` comes first (one timer per
  key: the latest request wins).
* ``add_rate_limited(key)`` / ``forget(key)``: a pass after the key's own retry delay, growing with
  each call until ``forget``.
* ``superseded(key)``: an event set when the key is added while its pass runs, so that the pass can
  abandon a call in flight (a newer spec wins at once) -- the one departure from controller-runtime,
  whose passes are never interrupted.

Every key being processed has its own task: a pass that waits on the server (a waiting stop)
holds no worker that another key needs, so there is no worker count to tune. ``shutdown`` cancels
every pass and timer.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass
from typing import Awaitable, Callable, Generic, Hashable, TypeVar

K = TypeVar("K", bound=Hashable)

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Result:
    """What a pass asks for next: ``requeue`` at once, or after ``requeue_after`` seconds."""

    requeue: bool = False
    requeue_after: float | None = None


DONE = Result()
AGAIN = Result(requeue=True)


class WorkQueue(Generic[K]):
    def __init__(self, process: Callable[[K], Awaitable[Result]], *,
                 rate_limit: Callable[[int], float] = lambda n: min(0.005 * 2 ** n, 1000.0)):
        self._process = process
        self._rate_limit = rate_limit
        self._tasks: dict[K, asyncio.Task[None]] = {}
        self._dirty: set[K] = set()
        self._timers: dict[K, asyncio.TimerHandle] = {}
        self._superseded: dict[K, asyncio.Event] = {}
        self._requeues: dict[K, int] = {}
        self.closed = False

    # --- adding ---------------------------------------------------------------------------------

    def add(self, key: K) -> None:
        if self.closed:
            return
        timer = self._timers.pop(key, None)
        if timer is not None:
            timer.cancel()
        if key in self._tasks:
            self._dirty.add(key)
            self._superseded[key].set()
            return
        self._start(key)

    def add_after(self, key: K, delay: float) -> None:
        if self.closed:
            return
        if delay <= 0:
            self.add(key)
            return
        old = self._timers.pop(key, None)
        if old is not None:
            old.cancel()
        self._timers[key] = asyncio.get_running_loop().call_later(delay, self._fire, key)

    def add_rate_limited(self, key: K) -> float:
        n = self._requeues.get(key, 0)
        self._requeues[key] = n + 1
        delay = self._rate_limit(n)
        self.add_after(key, delay)
        return delay

    def forget(self, key: K) -> None:
        self._requeues.pop(key, None)

    def num_requeues(self, key: K) -> int:
        return self._requeues.get(key, 0)

    def _fire(self, key: K) -> None:
        self._timers.pop(key, None)
        self.add(key)

    # --- state ----------------------------------------------------------------------------------

    def busy(self, key: K) -> bool:
        """A pass of ``key`` is running."""
        return key in self._tasks

    def pending(self, key: K) -> bool:
        """A timer is set for ``key``."""
        return key in self._timers

    def superseded(self, key: K) -> asyncio.Event:
        """Set once ``key`` was added again while its current pass runs."""
        ev = self._superseded.get(key)
        if ev is None:  # outside a pass (a test driving steps by hand): never set
            ev = asyncio.Event()
        return ev

    def is_superseded(self, key: K) -> bool:
        ev = self._superseded.get(key)
        return ev is not None and ev.is_set()

    # --- processing -----------------------------------------------------------------------------

    def _start(self, key: K) -> None:
        self._superseded[key] = asyncio.Event()
        self._tasks[key] = asyncio.get_running_loop().create_task(self._run(key), name=f"reconcile {key}")

    async def _run(self, key: K) -> None:
        try:
            while True:
                self._dirty.discard(key)
                self._superseded[key].clear()
                result = await self._process(key)
                if self.closed:
                    return
                if result.requeue or key in self._dirty:
                    continue
                if result.requeue_after is not None:
                    self.add_after(key, result.requeue_after)
                return
        finally:
            self._tasks.pop(key, None)
            self._superseded.pop(key, None)
            self._dirty.discard(key)

    def cancel(self, key: K) -> asyncio.Task[None] | None:
        """Stop processing ``key`` (the object is gone): its pass is cancelled, its timer dropped."""
        timer = self._timers.pop(key, None)
        if timer is not None:
            timer.cancel()
        self._requeues.pop(key, None)
        task = self._tasks.get(key)
        if task is not None:
            task.cancel()
        return task

    async def shutdown(self) -> None:
        """Cancel every pass and timer, and wait for the passes to end."""
        self.closed = True
        for timer in self._timers.values():
            timer.cancel()
        self._timers.clear()
        tasks = list(self._tasks.values())
        for t in tasks:
            t.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
