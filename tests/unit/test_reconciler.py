"""The orchestration in process: the controller (store, work queue, reconciler, actions, sync, status
writer) against the Elasticsearch emulator on a thread and a fake Kubernetes client that keeps the
objects' statuses the way server-side apply of the whole status leaves them.
"""

from __future__ import annotations

import asyncio
import copy
import time

import pytest

from rollup_operator.app.controller import Controller
from rollup_operator.job.spec import FINALIZER
from es_rollup_emulator import EmulatorThread


class FakeKube:
    """The Kubernetes calls of kube.Kube, in memory. Statuses are applied whole."""

    def __init__(self):
        self.status: dict[tuple, dict] = {}
        self.events: list[tuple] = []
        self.writes = 0
        self.finalizers: dict[tuple, list] = {}
        self.connections: dict[tuple, dict] = {}
        self.status_workers = 16
        self.event_slots = asyncio.Semaphore(4)
        self.component, self.instance = "rollup-operator", "test"
        self.ctl: Controller | None = None
        self.bodies: dict[tuple, dict] = {}

    async def apply_status(self, kind, ns, name, status):
        await asyncio.sleep(0)
        self.writes += 1
        self.status[(kind, ns, name)] = copy.deepcopy(status)
        return {"metadata": {"resourceVersion": "0"}}

    async def set_finalizers(self, ns, name, finalizers, rv):
        self.writes += 1
        body = copy.deepcopy(self.bodies[(ns, name)])
        body["metadata"]["finalizers"] = finalizers
        body["metadata"]["resourceVersion"] = str(int(body["metadata"]["resourceVersion"]) + 1)
        self.bodies[(ns, name)] = body
        return body

    async def get_connection(self, ns, name):
        return self.connections.get((ns, name))

    async def get_secret(self, ns, name):  # the Secret object, labelled for connections (credentials.py)
        if name != "creds":
            return None
        return {"metadata": {"name": name, "namespace": ns, "labels": {"rollup.esops.dev/credentials": "true"}},
                "stringData": {"username": "elastic", "password": "pw"}}

    async def event_once(self, ref, type_, reason, message, *, name):
        self.events.append((ref["name"], type_, reason))

    async def create_event(self, ns, body):
        self.events.append((body["involvedObject"]["name"], body["type"], body["reason"]))
        return {**body, "metadata": {**body["metadata"], "resourceVersion": "1"}}

    async def patch_event(self, ns, name, patch):  # a repeat, counted on the Event (event_recorder.py)
        ev = next((e for e in self.events if e[0] == name.rsplit(".", 1)[0]), None)
        self.events.append((name.rsplit(".", 1)[0], ev[1] if ev else "?", ev[2] if ev else "?"))
        return {"metadata": {"name": name}, **patch}

    def job(self, name, ns="ns"):
        return self.status.get(("RollupJob", ns, name), {})

    def ready(self, name):
        for c in self.job(name).get("conditions", []):
            if c["type"] == "Ready":
                return c["reason"]
        return None


def conn_body(url, *, max_requests=64, rv=1, generation=1, secret=False):
    spec = {"url": url, "syncInterval": "1s", "maxConcurrentRequests": max_requests}
    if secret:
        spec["auth"] = {"basic": {"secretRef": {"name": "creds"}}}
    return {"metadata": {"namespace": "ns", "name": "es", "generation": generation, "resourceVersion": str(rv)}, "spec": spec}


class World:
    def __init__(self, emu, kube, ctl):
        self.emu, self.kube, self.ctl = emu, kube, ctl
        self.rv = 10

    def put(self, name, desired, *, generation=1, **spec):
        self.rv += 1
        body = {"metadata": {"namespace": "ns", "name": name, "uid": f"u-{name}", "generation": generation,
                             "resourceVersion": str(self.rv), "finalizers": self.kube.bodies.get(("ns", name), {}).get("metadata", {}).get("finalizers", [])},
                "spec": {"connectionRef": {"name": "es"}, "desiredState": desired, **spec}}
        body["metadata"].update(spec.pop("_meta", {}) if "_meta" in spec else {})
        self.kube.bodies[("ns", name)] = body
        self.ctl.on_job_event("MODIFIED", copy.deepcopy(body))
        return body

    async def until(self, check, timeout=10.0):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if check():
                return True
            await asyncio.sleep(0.02)
        raise AssertionError(f"timed out; statuses: {self.kube.status}, events: {self.kube.events}")


@pytest.fixture
def emu():
    with EmulatorThread(version="8.17.0", auto_trigger=False, page_duration=0.05) as e:
        yield e


@pytest.fixture
async def world(emu):
    kube = FakeKube()
    ctl = Controller(kube, poll_interval=0.1, coalesce_window=0.01)
    ctl.on_connection_event("ADDED", conn_body(emu.url))
    w = World(emu, kube, ctl)
    yield w
    await ctl.close()


async def test_stop_converges_with_one_status_per_transition_and_events_on_transitions(world):
    world.emu.add_job("j1", state="started")
    world.put("j1", "stopped")
    await world.until(lambda: world.kube.ready("j1") == "Stopped")
    st = world.kube.job("j1")
    assert st["jobState"] == "stopped" and st["stopAttempts"] == 1 and st["lastStopAttemptTime"]
    assert [e[2] for e in world.kube.events if e[0] == "j1"] == ["StopRequested", "Stopped"]
    assert world.emu.job_state("j1") == "stopped"
    writes = world.kube.writes
    await asyncio.sleep(1.3)  # a sync period: nothing changed, nothing written
    assert world.kube.writes == writes


async def test_start_and_drift_is_corrected(world):
    world.emu.add_job("j2", state="stopped")
    world.put("j2", "started")
    await world.until(lambda: world.kube.ready("j2") == "Started")
    world.emu.oob_stop("j2")  # behind the operator's back
    await world.until(lambda: any(e[2] == "DriftDetected" for e in world.kube.events))
    await world.until(lambda: world.kube.ready("j2") == "Started" and world.emu.job_state("j2") in ("started", "indexing"))


async def test_missing_job_is_stalled_and_invalid_spec_reported(world):
    world.put("nojob", "stopped")
    await world.until(lambda: world.kube.ready("nojob") == "JobNotFound")
    world.put("bad", "sideways")
    await world.until(lambda: world.kube.ready("bad") == "InvalidSpec")
    assert ("bad", "Warning", "InvalidSpec") in world.kube.events


async def test_missing_connection_is_read_through_once(world):
    body = {"metadata": {"namespace": "ns", "name": "other", "uid": "u", "generation": 1, "resourceVersion": "5"},
            "spec": {"connectionRef": {"name": "nowhere"}, "desiredState": "stopped"}}
    world.ctl.on_job_event("ADDED", body)
    await world.until(lambda: world.kube.ready("other") == "ConnectionNotFound")


async def test_a_flip_abandons_a_waiting_stop(world):
    world.emu.add_job("slow", state="indexing", stop_delay=30.0, page_duration=10.0)
    world.put("slow", "stopped", stop={"timeout": "20s"})
    await world.until(lambda: world.kube.ready("slow") == "Stopping")
    await asyncio.sleep(0.3)  # the waiting stop is in flight
    world.put("slow", "started", generation=2, stop={"timeout": "20s"})
    await world.until(lambda: world.kube.job("slow").get("observedGeneration") == 2 and world.kube.ready("slow") in ("Started", "WaitingForStop"))


async def test_one_request_slot_means_no_stop_waits_on_the_server(emu):
    kube = FakeKube()
    ctl = Controller(kube, poll_interval=0.1, coalesce_window=0.01)
    ctl.on_connection_event("ADDED", conn_body(emu.url, max_requests=1))
    w = World(emu, kube, ctl)
    try:
        emu.add_job("a", state="indexing", stop_delay=0.5)
        emu.add_job("b", state="stopped")
        w.put("a", "stopped")
        w.put("b", "started")
        await w.until(lambda: kube.ready("b") == "Started", timeout=5)
        await w.until(lambda: kube.ready("a") == "Stopped", timeout=10)
        stops = emu.requests("POST", "/_rollup/job/a/_stop")
        assert stops and all(r.query.get("wait_for_completion") in (None, "false") for r in stops)
    finally:
        await ctl.close()


async def test_deletion_under_delete_policy_stops_deletes_and_releases(world):
    world.emu.add_job("d1", state="started")
    world.put("d1", "stopped", deletionPolicy="Delete")
    await world.until(lambda: FINALIZER in world.kube.bodies[("ns", "d1")]["metadata"]["finalizers"] and world.kube.ready("d1") == "Stopped")
    body = copy.deepcopy(world.kube.bodies[("ns", "d1")])
    body["metadata"]["deletionTimestamp"] = "2026-12-01T00:00:00Z"
    body["metadata"]["resourceVersion"] = str(int(body["metadata"]["resourceVersion"]) + 1)
    world.kube.bodies[("ns", "d1")] = body
    world.ctl.on_job_event("MODIFIED", copy.deepcopy(body))
    await world.until(lambda: world.kube.bodies[("ns", "d1")]["metadata"]["finalizers"] == [])
    assert world.emu.job_state("d1") is None
    world.ctl.on_job_event("DELETED", body)
    assert ("ns", "d1") not in world.ctl.store.jobs


async def test_outage_is_retried_with_backoff_and_recovers(world):
    world.emu.add_job("o1", state="stopped")
    world.emu.go_down()
    world.put("o1", "stopped", backoff={"initial": "100ms", "max": "200ms"})
    await world.until(lambda: world.kube.ready("o1") == "ElasticsearchUnavailable")
    world.emu.come_up()
    await world.until(lambda: world.kube.ready("o1") == "Stopped", timeout=15)
    conn = world.kube.status.get(("ElasticsearchConnection", "ns", "es"), {})
    assert conn.get("conditions")


async def test_close_without_drain_cancels_calls_in_flight_and_writes_nothing_more(world):
    w, emu, kube, ctl = world, world.emu, world.kube, world.ctl
    emu.add_job("c1", state="indexing", stop_delay=30.0)
    w.put("c1", "stopped", stop={"timeout": "20s"})
    await w.until(lambda: kube.ready("c1") == "Stopping")
    await asyncio.sleep(0.2)
    writes = kube.writes
    await ctl.close(drain=False)
    assert not ctl.queue.busy(("ns", "c1"))
    await asyncio.sleep(0.3)
    assert kube.writes == writes


async def test_graceful_close_counts_the_stop_in_flight_and_writes_it(world):
    w, emu, kube, ctl = world, world.emu, world.kube, world.ctl
    emu.add_job("g1", state="indexing", stop_delay=30.0)
    w.put("g1", "stopped", stop={"timeout": "20s"})
    await w.until(lambda: kube.ready("g1") == "Stopping" and emu.job_state("g1") == "stopping")  # the stop arrived
    await asyncio.sleep(0.1)
    assert not kube.job("g1").get("stopAttempts")  # the call is still waiting on the server
    await ctl.close(drain=True)  # SIGTERM
    st = kube.job("g1")
    assert st["stopAttempts"] == 1 and st["lastStopAttemptTime"]
    assert kube.ready("g1") == "Stopping"
