"""The orchestration (controller, store, work queue, the pass, actions, the connection and its
shared reads, the status writer) against the in-memory rollup API (tests/support/fake_engine.py)
and the in-memory Kubernetes client: no HTTP server, socket or thread, so each runs in
milliseconds. tests/unit/test_reconciler.py runs the same layers against the emulator over HTTP."""

from __future__ import annotations

import asyncio
import copy
import time

import pytest

from rollup_operator.app.controller import Controller
from rollup_operator.job.spec import FINALIZER
from tests.support.fake_engine import FakeRollupApi
from tests.unit.test_reconciler import FakeKube, World, conn_body


@pytest.fixture
async def world():
    api = FakeRollupApi()
    kube = FakeKube()
    ctl = Controller(kube, poll_interval=0.02, coalesce_window=0.0, dialects=api.dialect)
    ctl.on_connection_event("ADDED", conn_body("http://fake.invalid:9200"))
    w = World(api, kube, ctl)
    yield w
    await ctl.close()


async def test_stop_converges_with_one_stop_and_events_on_transitions(world):
    t0 = time.monotonic()
    world.emu.add_job("j1", state="started")
    world.put("j1", "stopped")
    await world.until(lambda: world.kube.ready("j1") == "Stopped", timeout=2)
    assert time.monotonic() - t0 < 1.0
    st = world.kube.job("j1")
    assert st["jobState"] == "stopped" and st["stopAttempts"] == 1
    assert [e[2] for e in world.kube.events if e[0] == "j1"] == ["StopRequested", "Stopped"]
    assert world.emu.count("stop", "j1") == 1 and world.emu.job_state("j1") == "stopped"


async def test_a_stop_that_times_out_is_retried_until_stopped(world):
    world.emu.add_job("slow", state="indexing", stop_delay=0.25)
    world.put("slow", "stopped", stop={"timeout": "100ms"})
    await world.until(lambda: world.kube.ready("slow") == "Stopped", timeout=3)
    st = world.kube.job("slow")
    assert st["stopAttempts"] >= 2 and world.emu.count("stop", "slow") == st["stopAttempts"]
    reasons = [e[2] for e in world.kube.events if e[0] == "slow"]
    assert reasons[0] == "StopRequested" and reasons.count("StopTimedOut") == 1 and reasons[-1] == "Stopped", reasons


async def test_start_then_drift_is_corrected_once_per_transition(world):
    world.emu.add_job("j2", state="stopped")
    world.put("j2", "started")
    await world.until(lambda: world.kube.ready("j2") == "Started", timeout=2)
    world.emu.oob_stop("j2")
    world.ctl.store.jobs[("ns", "j2")].forget_observation(time.monotonic())  # what the connection's sync would deliver
    world.ctl.queue.add(("ns", "j2"))
    await world.until(lambda: any(e[2] == "DriftDetected" for e in world.kube.events), timeout=2)
    await world.until(lambda: world.emu.job_state("j2") == "started", timeout=2)
    assert world.emu.count("start", "j2") == 2


async def test_missing_job_is_stalled_and_nothing_is_sent(world):
    world.put("nojob", "stopped")
    await world.until(lambda: world.kube.ready("nojob") == "JobNotFound", timeout=2)
    assert world.emu.count("stop") == 0 and world.emu.count("start") == 0


async def test_delete_policy_stops_deletes_and_releases_the_finalizer(world):
    world.emu.add_job("d1", state="started")
    world.put("d1", "stopped", deletionPolicy="Delete")
    await world.until(lambda: FINALIZER in world.kube.bodies[("ns", "d1")]["metadata"]["finalizers"]
                      and world.kube.ready("d1") == "Stopped", timeout=2)
    body = copy.deepcopy(world.kube.bodies[("ns", "d1")])
    body["metadata"]["deletionTimestamp"] = "2026-12-01T00:00:00Z"
    body["metadata"]["resourceVersion"] = str(int(body["metadata"]["resourceVersion"]) + 1)
    world.kube.bodies[("ns", "d1")] = body
    world.ctl.on_job_event("MODIFIED", copy.deepcopy(body))
    await world.until(lambda: world.kube.bodies[("ns", "d1")]["metadata"]["finalizers"] == [], timeout=2)
    assert world.emu.job_state("d1") is None and world.emu.count("delete", "d1") == 1


async def test_a_flip_while_a_stop_waits_abandons_it_and_the_newest_spec_wins(world):
    world.emu.add_job("flip", state="indexing", stop_delay=5.0)
    world.put("flip", "stopped", stop={"timeout": "5s"})
    await world.until(lambda: world.kube.ready("flip") == "Stopping", timeout=2)
    await asyncio.sleep(0.05)  # the waiting stop is in flight
    world.put("flip", "started", generation=2, stop={"timeout": "5s"})
    await world.until(lambda: world.kube.job("flip").get("observedGeneration") == 2
                      and world.kube.ready("flip") in ("WaitingForStop", "Started"), timeout=2)
    st = world.kube.job("flip")
    assert st.get("stopAttempts") is None  # a new generation starts its own count
