"""While the operator's own status writes of a job are queued or in flight, a watch event carrying the
older stored status does not replace the entry's status (what the stored status becomes once they land);
once they have landed, the watch's status is taken again. The writer keeps ``entry.writes_pending``."""

from __future__ import annotations

import asyncio

from rollup_operator.job.store import Store
from rollup_operator.kube.status_writer import StatusWriter
from tests.support.fake_kube import FakeKube


def body(rv: int, status: dict, generation: int = 1) -> dict:
    return {"apiVersion": "rollup.esops.dev/v1alpha1", "kind": "RollupJob",
            "metadata": {"namespace": "ns", "name": "j", "uid": "u", "resourceVersion": str(rv), "generation": generation},
            "spec": {"jobId": "j", "connectionRef": {"name": "es"}, "desiredState": "stopped"}, "status": status}


def test_store_keeps_the_entrys_status_while_writes_are_pending():
    store = Store()
    entry = store.put_job(body(1, {"jobState": "started"}), 0.0)
    assert entry is not None and entry.status == {"jobState": "started"}
    entry.status, entry.writes_pending = {"jobState": "stopping"}, True  # as StatusWriter.publish leaves it
    store.put_job(body(2, {"jobState": "started"}, generation=2), 1.0)  # an event from before that write landed
    assert entry.status == {"jobState": "stopping"}
    entry.writes_pending = False
    store.put_job(body(3, {"jobState": "stopped"}, generation=3), 2.0)
    assert entry.status == {"jobState": "stopped"}


def test_the_writer_sets_writes_pending_until_its_writes_have_landed():
    async def run() -> None:
        kube = FakeKube()
        gate = asyncio.Event()
        real = kube.apply_status

        async def slow_apply(kind, ns, name, status):
            await gate.wait()
            return await real(kind, ns, name, status)
        kube.apply_status = slow_apply
        writer = StatusWriter(kube, lambda: False)  # type: ignore[arg-type]
        store = Store()
        entry = store.put_job(body(1, {}), 0.0)
        assert entry is not None and not entry.writes_pending
        assert writer.publish(entry, {"jobState": "stopping"}, ("Normal", "Stopping", "stopping"))
        assert entry.writes_pending
        await asyncio.sleep(0.01)
        assert entry.writes_pending  # the write is in flight
        assert not writer.publish(entry, {"jobState": "stopping"})  # nothing new: nothing queued
        gate.set()
        await writer.drain()
        assert not entry.writes_pending and kube.status[("RollupJob", "ns", "j")] == {"jobState": "stopping"}
        assert kube.events == [("j", "Normal", "Stopping")]  # the event after the status it describes
    asyncio.run(run())
