"""The scrape-time gauges (metrics_collector.py) on a real Controller and Store: the statuses are
the ones the operator itself wrote (controller + emulator on a thread + the fake Kubernetes client
of test_reconciler), read through a real Prometheus exposition."""

from __future__ import annotations

import copy
import time

from prometheus_client import REGISTRY, CollectorRegistry, generate_latest
from prometheus_client.parser import text_string_to_metric_families

from rollup_operator.app.controller import Controller
from rollup_operator.metrics_collector import JobsCollector

import test_reconciler
from test_reconciler import FakeKube, World, conn_body

emu, world = test_reconciler.emu, test_reconciler.world  # the fixtures: controller + emulator + fake Kubernetes

T0, T1 = "2026-12-01T10:00:00Z", "2026-12-01T10:00:05Z"


def scrape(ctl) -> dict[str, dict[tuple, float]]:
    """{metric: {sorted label items: value}} from /metrics as the collector renders it."""
    registry = CollectorRegistry()
    registry.register(JobsCollector(ctl))
    out: dict[str, dict[tuple, float]] = {}
    for family in text_string_to_metric_families(generate_latest(registry).decode()):
        for s in family.samples:
            out.setdefault(s.name, {})[tuple(sorted(s.labels.items()))] = s.value
    return out


def by(samples: dict[tuple, float], type_: str, status: str = "True") -> dict[str, float]:
    """{reason: count} for one condition type and status."""
    out = {}
    for labels, v in samples.items():
        d = dict(labels)
        if d["type"] == type_ and d["status"] == status:
            out[d["reason"]] = v
    return out


async def fill(w: World) -> None:
    """Five RollupJobs the operator has worked on (converged; a duplicate in its desired state;
    JobNotFound; an invalid spec; on a connection whose Secret is not there) and two connections."""
    locked = {"metadata": {"namespace": "ns", "name": "locked", "generation": 1, "resourceVersion": "2"},
              "spec": {"url": w.emu.url, "syncInterval": "1s", "auth": {"basic": {"secretRef": {"name": "gone"}}}}}
    w.kube.connections[("ns", "locked")] = locked
    w.ctl.on_connection_event("ADDED", copy.deepcopy(locked))
    w.emu.add_job("shared", state="stopped")
    w.put("owner", "stopped", jobId="shared", _meta={"creationTimestamp": T0})
    w.put("dup", "stopped", jobId="shared", _meta={"creationTimestamp": T1})  # same desired state as its owner
    w.put("nojob", "stopped")
    w.put("bad", "sideways")
    w.put("stuck", "stopped", connectionRef={"name": "locked"})
    await w.until(lambda: w.kube.ready("owner") == "Stopped" and w.kube.ready("dup") == "DuplicateJob"
                  and w.kube.ready("nojob") == "JobNotFound" and w.kube.ready("bad") == "InvalidSpec"
                  and w.kube.ready("stuck") == "SecretNotAllowed"
                  and all(w.kube.status.get(("ElasticsearchConnection", "ns", n)) for n in ("es", "locked")))


async def test_job_conditions_count_the_stored_conditions_by_type_status_and_reason(world):
    await fill(world)
    m = scrape(world.ctl)
    jobs = m["rollup_operator_job_conditions"]
    assert by(jobs, "Stalled") == {"DuplicateJob": 1, "JobNotFound": 1, "InvalidSpec": 1, "SecretNotAllowed": 1}
    assert by(jobs, "Stalled", "False") == {"Stopped": 1}
    assert by(jobs, "Ready") == {"Stopped": 1}
    assert by(jobs, "Ready", "False") == {"DuplicateJob": 1, "JobNotFound": 1, "InvalidSpec": 1, "SecretNotAllowed": 1}
    assert by(jobs, "Reconciling") == {}
    # the duplicate is in its desired state: the jobs gauge alone cannot tell it is Stalled
    assert m["rollup_operator_jobs"][(("desired", "stopped"), ("state", "stopped"))] == 2
    # each job counts once per type
    for type_ in ("Ready", "Reconciling", "Stalled"):
        assert sum(v for k, v in jobs.items() if dict(k)["type"] == type_) == len(world.ctl.store.jobs) == 5
    assert sum(m["rollup_operator_jobs"].values()) == 5


async def test_connection_conditions_count_both_connections(world):
    await fill(world)
    conns = scrape(world.ctl)["rollup_operator_connection_conditions"]
    assert by(conns, "Ready") == {"Connected": 1}
    assert by(conns, "Ready", "False") == {"SecretNotAllowed": 1}
    assert by(conns, "Stalled") == {"SecretNotAllowed": 1}
    assert by(conns, "Reconciling", "False") == {"Connected": 1, "SecretNotAllowed": 1}


async def test_the_gauges_follow_a_change_and_a_deletion(world):
    await fill(world)
    world.emu.add_job("nojob", state="stopped")  # the missing job appears: the next pass converges it
    await world.until(lambda: world.kube.ready("nojob") == "Stopped", timeout=15)
    world.ctl.on_job_event("DELETED", copy.deepcopy(world.kube.bodies[("ns", "bad")]))
    jobs = scrape(world.ctl)["rollup_operator_job_conditions"]
    assert by(jobs, "Stalled") == {"DuplicateJob": 1, "SecretNotAllowed": 1}
    assert by(jobs, "Ready") == {"Stopped": 2}


async def test_a_deleted_connection_leaves_no_series(world):
    """Neither its conditions nor its rollup_operator_connection_up (else RollupConnectionDown would
    fire for a connection deleted while down, until the operator restarts)."""
    await fill(world)
    up = {"namespace": "ns", "connection": "es"}
    assert REGISTRY.get_sample_value("rollup_operator_connection_up", up) == 1.0
    # the connection whose Secret is missing never reads: only its conditions show it (RollupConnectionNotReady)
    assert REGISTRY.get_sample_value("rollup_operator_connection_up", {"namespace": "ns", "connection": "locked"}) is None
    world.ctl.on_connection_event("DELETED", conn_body(world.emu.url, rv=50))
    assert REGISTRY.get_sample_value("rollup_operator_connection_up", up) is None
    conns = scrape(world.ctl)["rollup_operator_connection_conditions"]
    assert by(conns, "Ready") == {} and by(conns, "Ready", "False") == {"SecretNotAllowed": 1}


async def test_a_restarted_operator_reports_the_stored_conditions_before_any_pass(world):
    """What the watch delivers after a restart (or to a new leader) is counted at once; an object
    with no status yet counts as Unknown."""
    await fill(world)
    fresh = Controller(FakeKube(), poll_interval=0.1, coalesce_window=0.01)
    try:
        for (ns, name), body in world.kube.bodies.items():
            fresh.store.put_job({**body, "status": world.kube.job(name, ns)}, time.monotonic())
        fresh.store.put_job({"metadata": {"namespace": "ns", "name": "new", "generation": 1, "resourceVersion": "99"},
                             "spec": {"connectionRef": {"name": "es"}, "desiredState": "started"}}, time.monotonic())
        for name in ("es", "locked"):
            fresh.store.put_connection({"metadata": {"namespace": "ns", "name": name, "generation": 1, "resourceVersion": "3"},
                                        "status": world.kube.status[("ElasticsearchConnection", "ns", name)]})
        fresh.store.put_connection({"metadata": {"namespace": "ns", "name": "quiet", "generation": 1, "resourceVersion": "4"},
                                    "spec": {"url": world.emu.url}})
        m, before = scrape(fresh), scrape(world.ctl)
        jobs = m["rollup_operator_job_conditions"]
        assert by(jobs, "Stalled") == by(before["rollup_operator_job_conditions"], "Stalled")
        assert by(jobs, "Ready", "Unknown") == by(jobs, "Stalled", "Unknown") == {"": 1}  # "new": no status yet
        conns = m["rollup_operator_connection_conditions"]
        assert by(conns, "Ready") == {"Connected": 1} and by(conns, "Ready", "Unknown") == {"": 1}
        assert m["rollup_operator_jobs"][(("desired", "started"), ("state", "unknown"))] == 1
    finally:
        await fresh.close()


async def test_an_empty_store_exports_the_families_without_samples():
    ctl = Controller(FakeKube(), poll_interval=0.1, coalesce_window=0.01)
    registry = CollectorRegistry()
    registry.register(JobsCollector(ctl))
    text = generate_latest(registry).decode()
    for name in ("rollup_operator_jobs", "rollup_operator_job_conditions", "rollup_operator_connection_conditions"):
        assert f"# TYPE {name} gauge" in text
    assert "rollup_operator_job_conditions{" not in text
    await ctl.close()
