"""A work queue of keys on asyncio, with controller-runtime's semantics where they apply.

* ``add(key)``: the key needs a pass. A key is processed by at most one pass at a time; a key
  added while its pass runs is marked dirty and gets one more pass right after (adds coalesce).
* ``add_after(key, delay)``: a pass in ``delay`` seconds, unless ``add`` comes first (one timer per
  key: the latest request wins).
* A pass is ``process(key, superseded)`` and returns a :class:`Result`. ``superseded`` is the
  pass's context: an event set when the key is added while the pass runs, so that the pass can
  abandon a call in flight (a newer spec wins at once) -- the one departure from controller-runtime,
  whose passes are never interrupted.
* ``requeue`` (``AGAIN``) runs the next pass at once, but only ``retry.IMMEDIATE_REQUEUES`` times
  in a row: beyond that each further one waits ``retry.requeue_backoff`` (controller-runtime
  rate-limits ``Requeue`` the same way), so a pass that keeps asking for more cannot spin. Any
  other result, and any new ``add``, ends the streak.

Every key being processed has its own task: a pass that waits on the server (a waiting stop)
holds no worker that another key needs, so there is no worker count to tune. ``shutdown`` cancels
every pass and timer.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass
from typing import Awaitable, Callable, Generic, Hashable, TypeVar

from rollup_operator.job import retry

K = TypeVar("K", bound=Hashable)

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Result:
    """What a pass asks for next: ``requeue`` at once, or after ``requeue_after`` seconds."""

    requeue: bool = False
    requeue_after: float | None = None


DONE = Result()
AGAIN = Result(requeue=True)


Process = Callable[[K, asyncio.Event], Awaitable[Result]]


class WorkQueue(Generic[K]):
    def __init__(self, process: Process[K]):
        self._process = process
        self._tasks: dict[K, asyncio.Task[None]] = {}
        self._dirty: set[K] = set()
        self._timers: dict[K, asyncio.TimerHandle] = {}
        self._superseded: dict[K, asyncio.Event] = {}
        self._again: dict[K, int] = {}  # immediate requeues in a row, kept across a spaced one
        self.closed = False

    # --- adding ---------------------------------------------------------------------------------

    def add(self, key: K) -> None:
        if self.closed:
            return
        self._again.pop(key, None)  # something happened to the key: a streak of requeues is over
        self._wake(key)

    def _wake(self, key: K) -> None:
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

    def _fire(self, key: K) -> None:
        self._timers.pop(key, None)
        if not self.closed:
            self._wake(key)

    # --- state ----------------------------------------------------------------------------------

    def busy(self, key: K) -> bool:
        """A pass of ``key`` is running."""
        return key in self._tasks

    def pending(self, key: K) -> bool:
        """A timer is set for ``key``."""
        return key in self._timers

    # --- processing -----------------------------------------------------------------------------

    def _start(self, key: K) -> None:
        self._superseded[key] = asyncio.Event()
        self._tasks[key] = asyncio.get_running_loop().create_task(self._run(key), name=f"reconcile {key}")

    async def _run(self, key: K) -> None:
        again = self._again.pop(key, 0)
        try:
            while True:
                self._dirty.discard(key)
                superseded = self._superseded[key]
                superseded.clear()
                result = await self._process(key, superseded)
                if self.closed:
                    return
                if key in self._dirty:
                    again = 0  # a new add: the pass it asks for is due at once
                    continue
                if result.requeue:
                    again += 1
                    if again <= retry.IMMEDIATE_REQUEUES:
                        continue
                    self.add_after(key, retry.requeue_backoff(again - retry.IMMEDIATE_REQUEUES))
                    self._again[key] = again
                    return
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
        self._again.pop(key, None)
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
