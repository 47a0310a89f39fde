"""A semaphore whose waiters are served by priority (lower first), first come first served within one.

The status writer holds one: under a backlog of status writes, a status that ends a transition
(Ready or Stalled: what ``kubectl wait`` and GitOps health read) is written before the
intermediate ones (``Stopping``) queued ahead of it. A waiter's priority can be raised while it
waits (``Waiter.raise_to``): its object's queued status became a final one.
"""

from __future__ import annotations

import asyncio
import heapq
import itertools
from types import TracebackType


class Waiter:
    """One acquisition in progress (or done); ``async with slots.waiter(p) as w`` holds a slot."""

    def __init__(self, slots: PrioritySlots, priority: int):
        self.slots = slots
        self.priority = priority
        self.future: asyncio.Future[None] | None = None
        self._entry: list[object] | None = None

    def raise_to(self, priority: int) -> None:
        """Serve this waiter as if it had asked with ``priority`` (if that is higher, i.e. lower)."""
        if priority >= self.priority:
            return
        self.priority = priority
        if self._entry is not None and self.future is not None and not self.future.done():
            self.slots._drop(self._entry)  # the old place in the queue is skipped
            self._entry = self.slots._push(priority, self.future)

    async def __aenter__(self) -> Waiter:
        await self.slots._acquire(self)
        return self

    async def __aexit__(self, et: type[BaseException] | None, e: BaseException | None, tb: TracebackType | None) -> None:
        self.slots.release()


class PrioritySlots:
    def __init__(self, n: int):
        self._free = n
        self._heap: list[list[object]] = []  # [priority, seq, future, alive]
        self._seq = itertools.count()
        self._alive = 0  # entries of the heap still waiting

    def waiter(self, priority: int) -> Waiter:
        return Waiter(self, priority)

    @property
    def waiting(self) -> int:
        return self._alive

    def _push(self, priority: int, future: asyncio.Future[None]) -> list[object]:
        entry: list[object] = [priority, next(self._seq), future, True]
        heapq.heappush(self._heap, entry)
        self._alive += 1
        return entry

    def _drop(self, entry: list[object]) -> None:
        if entry[3]:
            entry[3] = False
            self._alive -= 1

    async def _acquire(self, w: Waiter) -> None:
        if self._free > 0 and not self.waiting:
            self._free -= 1
            return
        w.future = asyncio.get_running_loop().create_future()
        w._entry = self._push(w.priority, w.future)
        try:
            await w.future
        except asyncio.CancelledError:
            if w.future.done() and not w.future.cancelled():
                self.release()  # the slot was handed over just as the waiter was cancelled
            elif w._entry is not None:
                self._drop(w._entry)
            raise

    def release(self) -> None:
        while self._heap:
            entry = heapq.heappop(self._heap)
            fut, alive = entry[2], entry[3]
            if not alive:
                continue
            self._alive -= 1
            entry[3] = False
            assert isinstance(fut, asyncio.Future)
            if not fut.done():
                fut.set_result(None)  # the slot passes straight to the waiter
                return
        self._free += 1
