"""The event recorder: core/v1 Events correlated the way client-go's recorder does it.

client-go (``tools/record``, ``EventCorrelator``) never posts the same Event twice. Read from its
``events_cache.go``; written here from that description, not from its code:

* **Dedup.** An Event identical to one already posted (same source component and instance, the
  same involved object: kind, namespace, name, uid, apiVersion; same type, reason and message) is
  not created again: the existing Event is PATCHed with ``count`` + 1 and a new
  ``lastTimestamp`` (and its message). If that Event is gone (expired: the API server's
  ``--event-ttl``, 1 h by default), it is created anew. Remembered for the ``cache_size`` most
  recently used keys (4096, an LRU, as client-go).
* **Similar events.** Events that differ only by message (same source, object, type, reason):
  once ``similar_max`` (10) distinct messages were seen within ``window`` (600 s) of each other,
  further ones go to one Event whose message is ``(combined from similar events): <latest>``,
  itself counted as above. A quiet ``window`` starts the group afresh.

Not taken from client-go: its spam filter (a token bucket of 25 events per object, refilled one
per 5 minutes, that drops events). The operator posts only on transitions and these counts
already bound the number of Event objects; dropping a transition's Warning would hide it.

One caller per object at a time (the status writer drains each object's outbox in one task), so
a key is never being created and patched at once. Best effort: a failed post is logged, never
raised; the cache learns an Event only from the server's answer.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import OrderedDict
from dataclasses import dataclass, field
from typing import Any, Callable, Mapping, Protocol

from rollup_operator.timefmt import rfc3339

log = logging.getLogger("rollup_operator")

COMBINED_PREFIX = "(combined from similar events): "
MAX_MESSAGE = 1024


class Sink(Protocol):
    """The two Kubernetes calls the recorder makes (kube.Kube implements them)."""

    async def create_event(self, namespace: str, body: dict[str, Any]) -> dict[str, Any]: ...

    async def patch_event(self, namespace: str, name: str, patch: dict[str, Any]) -> dict[str, Any] | None:
        """Merge-patch an Event; None if it no longer exists."""
        ...


@dataclass
class _Posted:
    name: str
    count: int
    first: str  # firstTimestamp, RFC 3339


@dataclass
class _Similar:
    messages: set[str] = field(default_factory=set)
    last: float = float("-inf")


def event_body(name: str, involved: Mapping[str, Any], type_: str, reason: str, message: str,
               component: str, instance: str, now: str) -> dict[str, Any]:
    """A core/v1 Event, the one shape every Event the operator posts has (the recorder's, the
    once-only ones of ``Kube.event_once``, the Lease's). ``involved``: its involvedObject."""
    return {
        "metadata": {"name": name, "namespace": involved["namespace"]},
        "involvedObject": dict(involved),
        "type": type_, "reason": reason, "message": message[:MAX_MESSAGE],
        "source": {"component": component, "host": instance},
        "reportingComponent": component, "reportingInstance": instance[:128],
        "firstTimestamp": now, "lastTimestamp": now, "count": 1,
    }


class _LRU(OrderedDict[Any, Any]):
    def __init__(self, size: int):
        super().__init__()
        self.size = size

    def get_recent(self, key: Any) -> Any:
        if key in self:
            self.move_to_end(key)
            return self[key]
        return None

    def put(self, key: Any, value: Any) -> None:
        self[key] = value
        self.move_to_end(key)
        while len(self) > self.size:
            self.popitem(last=False)


class EventRecorder:
    def __init__(self, sink: Sink, *, component: str, instance: str, api_version: str = "",
                 clock: Callable[[], float] = time.time, window: float = 600.0, similar_max: int = 10,
                 cache_size: int = 4096):
        self.sink = sink
        self.component, self.instance = component, instance
        self.api_version = api_version
        self.clock = clock
        self.window, self.similar_max = window, similar_max
        self._posted: _LRU = _LRU(cache_size)
        self._similar: _LRU = _LRU(cache_size)
        self._seq = 0

    # --- correlation (no I/O) -------------------------------------------------------------

    def _object(self, ref: Mapping[str, Any]) -> dict[str, Any]:
        obj = {"apiVersion": ref.get("apiVersion", self.api_version), "kind": ref.get("kind", ""),
               "namespace": ref["namespace"], "name": ref["name"]}
        if ref.get("uid"):
            obj["uid"] = ref["uid"]
        return obj

    def correlate(self, ref: Mapping[str, Any], type_: str, reason: str, message: str) -> tuple[tuple[Any, ...], str]:
        """(cache key, message to post) for one occurrence, as client-go's aggregator decides it."""
        now = self.clock()
        message = message[:MAX_MESSAGE]
        o = self._object(ref)
        group = (self.component, self.instance, o["kind"], o["namespace"], o["name"], o.get("uid", ""),
                 o["apiVersion"], type_, reason)
        similar = self._similar.get_recent(group)
        if similar is None or now - similar.last > self.window:
            similar = _Similar()
        similar.messages.add(message)
        similar.last = now
        self._similar.put(group, similar)
        if len(similar.messages) < self.similar_max:
            return group + (message,), message
        similar.messages.discard(next(iter(similar.messages)))  # do not grow past the threshold
        return group + (None,), (COMBINED_PREFIX + message)[:MAX_MESSAGE]

    # --- posting ---------------------------------------------------------------------------

    async def record(self, ref: Mapping[str, Any], type_: str, reason: str, message: str) -> None:
        """Post one occurrence: a new Event, or a count on the Event already posted. Never raises."""
        key, text = self.correlate(ref, type_, reason, message)
        now = rfc3339(self.clock())
        ns = ref["namespace"]
        try:
            seen = self._posted.get_recent(key)
            if seen is not None:
                out = await self.sink.patch_event(ns, seen.name, {"count": seen.count + 1, "lastTimestamp": now, "message": text})
                if out is not None:
                    self._learn(key, out, seen.first)
                    return
            out = await self.sink.create_event(ns, self._body(ref, type_, reason, text, now))
            self._learn(key, out, now)
        except asyncio.CancelledError:
            raise
        except Exception as e:  # noqa: BLE001 - events are best effort
            log.warning("could not post event %s for %s/%s: %s", reason, ns, ref["name"], e)

    def _learn(self, key: tuple[Any, ...], answer: Mapping[str, Any], first: str) -> None:
        meta = answer.get("metadata") or {}
        self._posted.put(key, _Posted(str(meta.get("name")), int(answer.get("count") or 1),
                                      str(answer.get("firstTimestamp") or first)))

    def _body(self, ref: Mapping[str, Any], type_: str, reason: str, message: str, now: str) -> dict[str, Any]:
        self._seq += 1
        name = f"{ref['name']}.{time.time_ns():x}{self._seq % 4096:03x}"
        return event_body(name, self._object(ref), type_, reason, message, self.component, self.instance, now)
