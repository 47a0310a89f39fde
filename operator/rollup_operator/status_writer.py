"""Writes a RollupJob's status patches and events: in order, merged under backlog, retried until they land.

Each job has an outbox of (status patch, event) pairs and at most one writer task draining it.
The controller decides what to write; this module only gets it written. Knows nothing of
Elasticsearch.
"""

from __future__ import annotations

import asyncio
from typing import Callable

from .kube import Kube, KubeError, resource_version
from .status import merge_patches


class StatusWriter:
    def __init__(self, kube: Kube, closing: Callable[[], bool]):
        self.kube = kube
        self.closing = closing

    def enqueue(self, rt, patch: dict | None, event) -> None:
        """Queue a status patch and/or an event; one writer per job drains its queue in order."""
        rt.outbox.append((patch, event))
        if rt.writer is None or rt.writer.done():
            rt.writer = asyncio.create_task(self._drain(rt))

    async def _drain(self, rt) -> None:
        """Write a job's queued status patches and events, in order.

        The queue is taken only once a Kubernetes write slot is free, so under a backlog (a
        thousand jobs stopping at once) the patches that piled up meanwhile go out as one merged
        patch: an intermediate status nobody could have seen yet (Stopping) is folded into the
        next one (Stopped) instead of costing its own write. Events are all posted, after the
        status they describe.
        """
        while rt.outbox:
            async with self.kube.status_slots:
                items, rt.outbox = rt.outbox, []
                patch: dict | None = None
                for p, _ in items:
                    if p is not None:
                        patch = merge_patches(patch, p)
                if patch is not None:
                    obj = await self._patch_status(rt, patch)
                    if obj is not None:
                        rt.rv = max(rt.rv, resource_version(obj.get("metadata") or {}))
            for _, event in items:
                if event is not None:
                    await self.kube.event(rt.ref, *event)

    async def _patch_status(self, rt, patch: dict) -> dict | None:
        """Patch the job's status, retrying with backoff until it lands.

        ``rt.status`` already holds what this patch makes of the stored status, and later patches
        are computed against it: a patch that is dropped would leave the stored status stale for
        good (an idle job is not written again while nothing changes). So it is retried while the
        API server is unreachable, overloaded, or refuses (a restarted API server can answer 403
        until its RBAC caches are warm), until it lands, the object is gone (None), the patch
        itself is refused as invalid (400/422), or the operator shuts down.
        """
        delay = 0.5
        while True:
            try:
                return await self.kube.patch_job_status(rt.namespace, rt.name, patch)
            except KubeError as e:
                if e.status in (400, 422):
                    rt.log.error("cannot write status: %s", e)
                    return None
                err: Exception = e
            except Exception as e:  # noqa: BLE001 - connection refused, timeout...
                err = e
            if self.closing():
                rt.log.error("cannot write status: %s", err)
                return None
            rt.log.warning("cannot write status (%s); retrying in %gs", err, delay)
            await asyncio.sleep(delay)
            delay = min(delay * 2, 10.0)

