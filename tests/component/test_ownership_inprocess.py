"""Ownership in process: two RollupJobs naming one server job, through the controller against the
emulator on a thread (the pure claim rules are tests/unit/test_ownership.py)."""

from __future__ import annotations

import asyncio
import copy

import pytest

from es_rollup_emulator import EmulatorThread
from rollup_operator.app.controller import Controller
from tests.support.fake_kube import FakeKube, World, conn_body


# --- in process: the reconciler step ----------------------------------------------------------


@pytest.fixture
def emu():
    with EmulatorThread(version="8.17.0", auto_trigger=False, page_duration=0.05) as e:
        yield e


async def test_the_younger_claim_never_calls_and_takes_over_when_the_owner_goes(emu):
    kube = FakeKube()
    ctl = Controller(kube, poll_interval=0.1, coalesce_window=0.01)
    ctl.on_connection_event("ADDED", conn_body(emu.url))
    w = World(emu, kube, ctl)
    try:
        emu.add_job("shared", state="stopped")
        w.put("owner", "started", jobId="shared", _meta={"creationTimestamp": "2026-12-01T10:00:00Z"})
        await w.until(lambda: kube.ready("owner") == "Started")
        w.put("dup", "stopped", jobId="shared", _meta={"creationTimestamp": "2026-12-01T10:00:05Z"})
        await w.until(lambda: kube.ready("dup") == "DuplicateJob")
        await asyncio.sleep(1.5)  # a sync period and more
        assert emu.requests("POST", "/_rollup/job/shared/_stop") == []
        assert emu.job_state("shared") in ("started", "indexing") and kube.ready("owner") == "Started"
        st = kube.job("dup")
        stalled = next(x for x in st["conditions"] if x["type"] == "Stalled")
        assert stalled["status"] == "True" and "RollupJob ns/owner" in stalled["message"]
        assert [e[2] for e in kube.events if e[0] == "dup"] == ["DuplicateJob"]
        ctl.on_job_event("DELETED", copy.deepcopy(kube.bodies[("ns", "owner")]))
        await w.until(lambda: kube.ready("dup") == "Stopped" and emu.job_state("shared") == "stopped")
        assert [e[2] for e in kube.events if e[0] == "dup"] == ["DuplicateJob", "DuplicateResolved", "StopRequested", "Stopped"]
    finally:
        await ctl.close()


async def test_the_duplicate_takes_over_when_the_owners_connection_points_elsewhere(emu):
    with EmulatorThread(version="8.17.0", auto_trigger=False) as elsewhere:
        kube = FakeKube()
        ctl = Controller(kube, poll_interval=0.1, coalesce_window=0.01)
        ctl.on_connection_event("ADDED", conn_body(emu.url))
        second = conn_body(emu.url)
        second["metadata"]["name"] = "es2"
        ctl.on_connection_event("ADDED", copy.deepcopy(second))
        w = World(emu, kube, ctl)
        try:
            emu.add_job("shared", state="stopped")
            w.put("owner", "started", jobId="shared", connectionRef={"name": "es2"}, _meta={"creationTimestamp": "2026-12-01T10:00:00Z"})
            w.put("dup", "stopped", jobId="shared", _meta={"creationTimestamp": "2026-12-01T10:00:05Z"})
            await w.until(lambda: kube.ready("owner") == "Started" and kube.ready("dup") == "DuplicateJob")
            assert emu.requests("POST", "/_rollup/job/shared/_stop") == []
            moved = copy.deepcopy(second)
            moved["spec"]["url"] = elsewhere.url
            moved["metadata"].update(generation=2, resourceVersion="2")
            ctl.on_connection_event("MODIFIED", moved)  # the owner now claims a job on another cluster
            await w.until(lambda: kube.ready("dup") == "Stopped" and emu.job_state("shared") == "stopped")
            assert kube.ready("owner") == "JobNotFound"  # there is no such job over there
            assert len(emu.requests("POST", "/_rollup/job/shared/_stop")) == 1
        finally:
            await ctl.close()
