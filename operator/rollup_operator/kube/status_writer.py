"""The one status writer, for both kinds: whole statuses by server-side apply, then their events.

``publish(target, wanted, event)`` is called by whoever rebuilt a status (the reconciler for a
RollupJob, the sync for an ElasticsearchConnection). It updates the target's view of the stored
status at once, and queues the write only if the rebuilt status differs and/or an event is due.
Each object has one outbox and at most one writer task draining it, in order:

* a status is written whole (``kube.apply_status``: server-side apply, field manager
  ``rollup-operator``, forced, status subresource), so there is no diff or merge to get wrong: under
  a backlog (a thousand jobs stopping at once) the statuses queued meanwhile collapse into the
  newest one (an intermediate ``Stopping`` nobody could have seen is not written), and a write
  that lands late cannot undo a newer one;
* every queued event is posted, in order and after the status it describes, through the event
  recorder (event_recorder.py: a repeat of an Event already posted is a count on it, as client-go
  does); a status queued meanwhile is written before the next event, so under a backlog a job's
  Ready never waits behind the Events of its earlier steps (Events have fewer slots, kube.py);
* under a backlog, a status that ends a transition (Ready or Stalled) takes the next free slot
  before the intermediate ones queued ahead of it (``priority``, priority_slots.py): a thousand
  jobs stopped at once become Ready in the order their stops finish, not behind every other
  job's ``Stopping``;
* a write that fails is retried (retry.py) until it lands, the object is gone, the status itself
  is refused (400/422), or the operator shuts down: the view was already updated, and an idle
  object is not written again while nothing changes.

Knows nothing of Elasticsearch.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from dataclasses import dataclass, field
from typing import Any, Callable, Mapping, Protocol

from rollup_operator.job import retry
from rollup_operator.kube.events import EventRecorder
from rollup_operator.kube.client import Kube, KubeError
from rollup_operator.job.spec import API_VERSION, resource_version
from rollup_operator.kube.priority_slots import PrioritySlots, Waiter

log = logging.getLogger("rollup_operator")

Event = tuple[str, str, str]  # (type, reason, message)


class Writable(Protocol):
    """What the writer needs of a store entry (store.JobEntry, store.ConnectionEntry)."""

    namespace: str
    name: str
    rv: int
    status: dict[str, Any]
    #: Set while this writer has writes of the object queued or in flight: the store then keeps
    #: ``status`` (what the stored status becomes once they land) over a watch event's older one.
    writes_pending: bool

    @property
    def kind(self) -> str: ...

    @property
    def ref(self) -> dict[str, str]: ...


@dataclass
class _Outbox:
    target: Writable
    status: dict[str, Any] | None = None
    events: list[Event] = field(default_factory=list)
    task: asyncio.Task[None] | None = None
    waiter: Waiter | None = None  # the writer's place in the queue for a slot, while it waits


def differs(stored: Mapping[str, Any] | None, wanted: Mapping[str, Any]) -> bool:
    """Whether writing ``wanted`` would change ``stored``. A key whose wanted value is None is
    wanted absent; conditions are compared whole."""
    stored = stored or {}
    for k, v in wanted.items():
        if v is None:
            if stored.get(k) is not None:
                return True
        elif stored.get(k) != v:
            return True
    return False


def applied(wanted: Mapping[str, Any]) -> dict[str, Any]:
    """The status object to apply (server-side apply of the whole status): ``wanted`` without the
    keys wanted absent. Fields the operator applied before and leaves out now are removed by the
    server, since the operator's field manager owns them."""
    return {k: v for k, v in wanted.items() if v is not None}


def priority(status: dict[str, Any]) -> int:
    """0 for a status that ends a transition (not Reconciling: Ready or Stalled, what ``kubectl
    wait`` and GitOps health checks read), 1 for an intermediate one (``Stopping``)."""
    for c in status.get("conditions") or ():
        if isinstance(c, dict) and c.get("type") == "Reconciling":
            return 1 if c.get("status") == "True" else 0
    return 0


class StatusWriter:
    def __init__(self, kube: Kube, closing: Callable[[], bool]):
        self.kube = kube
        self.closing = closing
        self.recorder = EventRecorder(kube, component=kube.component, instance=kube.instance, api_version=API_VERSION)
        #: Status writes in flight at once; under a backlog final statuses go first (priority_slots.py).
        self.slots = PrioritySlots(kube.status_workers)
        self._outboxes: dict[tuple[str, str, str], _Outbox] = {}
        #: Set when the operator lost the right to write (close without drain): publish nothing more.
        self.frozen = False

    def publish(self, target: Writable, wanted: dict[str, Any] | None, event: Event | None = None) -> bool:
        """Queue ``wanted`` (the whole rebuilt status; None values: absent) if it differs from the
        stored status, and ``event``. Returns whether anything was queued."""
        write = wanted is not None and differs(target.status, wanted)
        if self.frozen or not write and event is None:
            return False
        box = self._box(target)
        if write:
            assert wanted is not None
            target.status = applied({**target.status, **wanted})  # what the stored status is once it lands
            box.status = dict(target.status)
            if box.waiter is not None:
                box.waiter.raise_to(priority(box.status))
        if event is not None:
            box.events.append(event)
        target.writes_pending = True
        if box.task is None or box.task.done():
            box.task = asyncio.get_running_loop().create_task(self._drain(box), name=f"status {target.kind} {target.namespace}/{target.name}")
        return True

    def _box(self, target: Writable) -> _Outbox:
        k = (target.kind, target.namespace, target.name)
        box = self._outboxes.get(k)
        if box is None:
            box = self._outboxes[k] = _Outbox(target)
        box.target = target
        return box

    async def _drain(self, box: _Outbox) -> None:
        try:
            while box.status is not None or box.events:
                if box.status is not None:
                    box.waiter = self.slots.waiter(priority(box.status))
                    async with box.waiter:
                        # Taken only once a slot is held: the statuses queued meanwhile collapse.
                        # This task is the only one that takes it, so it is still there.
                        box.waiter = None
                        status, box.status = box.status, None
                        assert status is not None
                        obj = await self._apply(box.target, status)
                        if obj is not None:
                            box.target.rv = max(box.target.rv, resource_version(obj.get("metadata") or {}))
                    continue
                # Events in order, each after the status it describes; a newer status goes first
                # (under a backlog, Ready must not wait behind the Events of the steps before it).
                await self.recorder.record(box.target.ref, *box.events.pop(0))
        finally:
            t = box.target
            if box.status is None and not box.events:
                self._outboxes.pop((t.kind, t.namespace, t.name), None)
            t.writes_pending = False

    async def _apply(self, target: Writable, status: dict[str, Any]) -> dict[str, Any] | None:
        delay: float | None = None
        what = f"{target.kind} {target.namespace}/{target.name}"
        while True:
            try:
                return await self.kube.apply_status(target.kind, target.namespace, target.name, status)
            except KubeError as e:
                if e.status in (400, 422):
                    log.error("cannot write status of %s: %s", what, e)
                    return None
                err: Exception = e
            except asyncio.CancelledError:
                raise
            except Exception as e:  # noqa: BLE001 - connection refused, timeout...
                err = e
            if self.closing():
                log.error("cannot write status of %s: %s", what, err)
                return None
            delay = retry.status_write_retry(delay)
            log.warning("cannot write status of %s (%s); retrying in %gs", what, err, delay)
            await asyncio.sleep(delay)

    async def drain(self) -> None:
        """Let the writes queued so far land (a graceful shutdown)."""
        tasks = [b.task for b in self._outboxes.values() if b.task is not None]
        with contextlib.suppress(Exception):
            await asyncio.gather(*(asyncio.shield(t) for t in tasks), return_exceptions=True)

    async def abort(self) -> None:
        """Cancel every queued and in-flight write (the operator lost the right to write)."""
        tasks = [b.task for b in self._outboxes.values() if b.task is not None]
        for t in tasks:
            t.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        self._outboxes.clear()
