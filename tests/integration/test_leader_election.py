"""Leader election (issue 13) with real operator processes, a real kube-apiserver and the emulator.

Each test grants the operator's ServiceAccount the leader-election Role of the HA contract in
the test's namespace (manifests/ are another helper's) and puts the Lease there. Timings are
short through the flags, except where the defaults are what is measured.
"""

from __future__ import annotations

import signal
import time
import urllib.error
import urllib.request

import pytest

from .ha_support import (FreezableProxy, activity, grant_leader_election, le_args, proxied_kubeconfig, read_lease,
                         ts, wait_holder, wait_identity)
from .support import condition

SOURCE = {"properties": {"timestamp": {"type": "date"}, "value": {"type": "long"}, "host": {"type": "keyword"}}}
CONFIG = {
    "indexPattern": "rollup-source", "rollupIndex": "rollup-target", "cron": "*/30 * * * * ?", "pageSize": 100,
    "groups": {"dateHistogram": {"field": "timestamp", "fixedInterval": "1h"}},
    "metrics": [{"field": "value", "metrics": ["min", "max", "sum"]}],
}


@pytest.fixture
def ha(apiserver, kube_admin, cluster):
    grant_leader_election(kube_admin, cluster.ns, apiserver.sa_namespace, apiserver.sa_name)
    return cluster.ns


def calls(emu, method, path):
    return [r for r in emu.requests(method=method) if r.path == path]


def start_pair(operator, kube_admin, ns, timings, kubeconfig_a=None):
    """Leader A (started first, waited for), then standby B. Returns (a, id_a, b, id_b)."""
    a = operator(*le_args(ns, *timings), kubeconfig=kubeconfig_a)
    id_a = wait_identity(a)
    wait_holder(kube_admin, ns, lambda h: h == id_a, timeout=20)
    b = operator(*le_args(ns, *timings))
    id_b = wait_identity(b)
    assert id_a != id_b
    return a, id_a, b, id_b


def probe(proc, path) -> int:
    with urllib.request.urlopen(f"http://127.0.0.1:{proc.port}{path}", timeout=5) as r:
        return r.status


NOTHING = {"status": 0, "finalizer": 0, "event": 0, "lease": 0, "elasticsearch": 0, "leader": 0, "transitions": 0}


def test_two_processes_exactly_one_acts(ha, kube_admin, cluster, emulator, operator, kubectl):
    emu = emulator(auto_trigger=False)
    emu.add_job("to-stop", state="started")
    emu.add_job("to-start", state="stopped")
    cluster.connection("es", emu.url, syncInterval="1s")
    a, id_a, b, id_b = start_pair(operator, kube_admin, ha, (4, 3, 0.5))
    cluster.job("to-stop", "stopped")
    cluster.job("to-start", "started")
    cluster.wait_ready("to-stop", timeout=30)
    cluster.wait_ready("to-start", timeout=30)
    time.sleep(4)  # several sync intervals and Lease renewals at rest
    act_a, act_b = activity(a), activity(b)
    print(f"\nleader {id_a}: {act_a}\nstandby {id_b}: {act_b}")
    assert act_b == NOTHING  # not one write, not one call to Elasticsearch (Lease reads only)
    stops, starts = calls(emu, "POST", "/_rollup/job/to-stop/_stop"), calls(emu, "POST", "/_rollup/job/to-start/_start")
    assert len(stops) == 1 and len(starts) == 1, (stops, starts, a.logs()[-6000:])
    assert act_a["leader"] == 1 and act_a["transitions"] == 1
    assert act_a["status"] >= 2 and act_a["elasticsearch"] >= 4 and act_a["lease"] >= 6
    assert probe(b, "/healthz") == 200 and probe(b, "/readyz") == 200  # the standby's probes pass
    assert probe(a, "/healthz") == 200 and probe(a, "/readyz") == 200
    lease = read_lease(kube_admin, ha)["spec"]
    assert lease["holder_identity"] == id_a and lease["lease_duration_seconds"] == 4
    assert lease["lease_transitions"] == 0  # created by A, never taken over
    out = kubectl("get", "lease", "-n", ha).stdout
    print(out)
    assert "rollup-operator" in out and id_a in out
    evs = [e for e in cluster.core.list_namespaced_event(ha).items if e.involved_object.kind == "Lease"]
    assert [(e.reason, e.message) for e in evs] == [("LeaderElection", f"{id_a} became leader")]


def test_sigkill_of_the_leader_mid_stop_retry_hands_over_without_repeating(ha, kube_admin, cluster, emulator, operator):
    lease_s, renew, retry = 4, 3, 0.5
    emu = emulator(auto_trigger=False)
    emu.seed_rollup_usage()
    emu.create_index("rollup-source", SOURCE)
    emu.add_job("slow", state="started", stop_delay=10, pages_per_run=None, page_duration=30)
    assert emu.trigger("slow") and emu.job_state("slow") == "indexing"
    cluster.connection("es", emu.url, syncInterval="1s")
    a, id_a, b, id_b = start_pair(operator, kube_admin, ha, (lease_s, renew, retry))
    cluster.job("made", "started", config=CONFIG)  # A creates it (PUT): B must not create it again
    cluster.job("slow", "started", deletionPolicy="Delete", stop={"timeout": "1s"})
    cluster.wait_ready("made", timeout=30)
    cluster.wait("slow", lambda o: "rollup.esops.dev/cleanup" in (o["metadata"].get("finalizers") or []), timeout=30)
    cluster.delete("slow")  # stop (slowly: 10 s, 1 s per call), then DELETE, then release the finalizer
    deadline = time.monotonic() + 20
    while len(calls(emu, "POST", "/_rollup/job/slow/_stop")) < 2:  # A is retrying the stop
        assert time.monotonic() < deadline, emu.requests()
        time.sleep(0.05)
    assert activity(b) == NOTHING
    t_kill = time.time()
    a.kill()
    last_renew_a = ts(read_lease(kube_admin, ha)["spec"]["renew_time"])
    lease, _ = wait_holder(kube_admin, ha, lambda h: h == id_b, timeout=lease_s + 4 * retry + 10)
    acquired = ts(lease["spec"]["acquire_time"])
    from_kill, from_renew = acquired - t_kill, acquired - last_renew_a
    print(f"\nSIGKILL hand-over: standby acquired {from_kill:.2f}s after the kill, {from_renew:.2f}s after the "
          f"leader's last renewal (lease {lease_s}s, retry {retry}s)")
    # B counts the lease from when it saw the last renewal (by its own clock), polling every retry period
    assert from_renew <= lease_s + retry * 1.1 + 0.5
    assert from_kill <= lease_s + 2 * retry * 1.1 + 0.5
    assert lease["spec"]["lease_transitions"] == 1
    cluster.wait_gone("slow", timeout=40)
    assert emu.job_state("slow") is None
    dels = calls(emu, "DELETE", "/_rollup/job/slow")
    assert [r.status for r in dels] == [200]  # deleted once, after it was stopped
    stops = calls(emu, "POST", "/_rollup/job/slow/_stop")
    assert stops[-1].status == 200 and dels[0].timestamp >= stops[-1].timestamp
    assert any(r.timestamp > acquired for r in stops)  # B picked the stop up where A left it
    assert calls(emu, "POST", "/_rollup/job/slow/_start") == []  # nothing contradicting the spec
    assert [r.status for r in calls(emu, "PUT", "/_rollup/job/made")] == [200]  # created once, by A
    assert len(calls(emu, "POST", "/_rollup/job/made/_start")) == 1
    assert calls(emu, "DELETE", "/_rollup/job/made") == [] and calls(emu, "POST", "/_rollup/job/made/_stop") == []
    assert cluster.get("made")["status"]["managed"] is True
    act_b = activity(b)
    assert act_b["leader"] == 1 and act_b["transitions"] == 1 and act_b["elasticsearch"] > 0


def test_sigterm_hands_over_in_under_3_seconds_with_the_default_timings(ha, kube_admin, cluster, emulator, operator):
    emu = emulator(auto_trigger=False)
    emu.add_job("j", state="stopped")
    cluster.connection("es", emu.url, syncInterval="1s")
    a, id_a, b, id_b = start_pair(operator, kube_admin, ha, (15, 10, 2))
    cluster.job("j", "stopped")
    cluster.wait_ready("j", timeout=30)
    time.sleep(1)
    t_term = time.time()
    a.proc.send_signal(signal.SIGTERM)
    released, t_released = wait_holder(kube_admin, ha, lambda h: h != id_a, timeout=10, poll=0.01)
    lease, _ = wait_holder(kube_admin, ha, lambda h: h == id_b, timeout=10, poll=0.01)
    handover = ts(lease["spec"]["acquire_time"]) - t_term
    assert a.proc.wait(10) == 0
    n_before = len(emu.requests())
    cluster.set_desired("j", "started")
    cluster.wait_ready("j", timeout=30)
    print(f"\nSIGTERM hand-over: Lease released {t_released - t_term:.2f}s after SIGTERM (holder "
          f"{released['spec']['holder_identity']!r}), standby acquired {handover:.2f}s after SIGTERM "
          f"(lease 15s, renew 10s, retry 2s)")
    assert released["spec"]["holder_identity"] in ("", None, id_b)
    assert handover < 3.0
    assert len(calls(emu, "POST", "/_rollup/job/j/_start")) == 1 and len(emu.requests()) > n_before
    reasons = [(e.reason, e.message) for e in cluster.core.list_namespaced_event(ha).items if e.involved_object.kind == "Lease"]
    assert ("LeaderElection", f"{id_a} stopped leading (shutting down)") in reasons
    assert ("LeaderElection", f"{id_b} became leader") in reasons


def test_leader_cut_off_from_the_api_server_stops_before_its_lease_expires(
        ha, apiserver, kube_admin, cluster, emulator, operator, operator_kubeconfig, tmp_path):
    lease_s, renew, retry = 7, 4, 0.5
    proxy = FreezableProxy("127.0.0.1", apiserver.port)
    try:
        emu = emulator(auto_trigger=False)
        emu.add_job("slow", state="started", stop_delay=12, pages_per_run=None, page_duration=30)
        assert emu.trigger("slow")
        cluster.connection("es", emu.url, syncInterval="1s")
        kcfg = proxied_kubeconfig(operator_kubeconfig, proxy.port, tmp_path / "a.kubeconfig")
        a, id_a, b, id_b = start_pair(operator, kube_admin, ha, (lease_s, renew, retry), kubeconfig_a=kcfg)
        cluster.job("slow", "stopped", stop={"timeout": "1s"})
        deadline = time.monotonic() + 20
        while len(calls(emu, "POST", "/_rollup/job/slow/_stop")) < 2:  # A talks to Elasticsearch directly
            assert time.monotonic() < deadline
            time.sleep(0.05)
        t_freeze = time.time()
        proxy.freeze()
        last_renew_a, lost_b = 0.0, None
        while a.alive():  # watch the Lease as a user would, until A exits on its own
            spec = read_lease(kube_admin, ha)["spec"]
            if spec["holder_identity"] == id_a:
                last_renew_a = max(last_renew_a, ts(spec["renew_time"]))
            assert time.time() - t_freeze < lease_s + renew + 10, "the cut-off leader did not exit"
            time.sleep(0.02)
        t_exit = time.time()
        assert a.proc.returncode == 1
        assert "LOST LEADERSHIP" in a.logs() and "could not renew the Lease" in a.logs()
        lease, _ = wait_holder(kube_admin, ha, lambda h: h == id_b, timeout=lease_s + 3 * retry + 5)
        acquired = ts(lease["spec"]["acquire_time"])
        es_during = [r for r in emu.requests() if t_freeze <= r.timestamp < acquired]
        a_last_call = max((r.timestamp for r in es_during), default=t_freeze)
        print(f"\ncut off: last renewal {last_renew_a - t_freeze:+.2f}s from the freeze; A's last Elasticsearch call "
              f"{a_last_call - last_renew_a:.2f}s after it, A exited {t_exit - last_renew_a:.2f}s after it (lease "
              f"{lease_s}s, renew deadline {renew}s); B acquired {acquired - last_renew_a:.2f}s after it")
        assert last_renew_a > 0
        # A stopped sending at its renew deadline, and was gone before its lease could expire
        assert a_last_call <= last_renew_a + renew + 0.3
        assert t_exit < last_renew_a + lease_s
        # ...so every write of B comes after A's last one
        assert t_exit < acquired
        assert not [r for r in emu.requests() if a_last_call < r.timestamp < acquired]
        obj = cluster.wait_ready("slow", timeout=40)  # B converges the job
        assert obj["status"]["jobState"] == "stopped" and emu.job_state("slow") == "stopped"
        assert calls(emu, "POST", "/_rollup/job/slow/_start") == []
        first_b = min(r.timestamp for r in emu.requests() if r.timestamp >= acquired)
        assert first_b > t_exit
        assert condition(obj, "Ready")["reason"] == "Stopped"
    finally:
        proxy.close()


def _lease_requests(kubectl) -> dict[str, float]:
    """apiserver_request_total for coordination.k8s.io leases, by verb, from the API server itself."""
    text = kubectl("get", "--raw", "/metrics").stdout
    out: dict[str, float] = {}
    for line in text.splitlines():
        if line.startswith("apiserver_request_total{") and 'resource="leases"' in line and 'group="coordination.k8s.io"' in line:
            verb = line.split('verb="', 1)[1].split('"', 1)[0]
            out[verb] = out.get(verb, 0.0) + float(line.rsplit(" ", 1)[1])
    return out


def _delta(after: dict, before: dict) -> dict:
    return {k: after.get(k, 0) - before.get(k, 0) for k in set(after) | set(before) if after.get(k, 0) - before.get(k, 0)}


@pytest.mark.slow
def test_bench_lease_requests_per_minute_at_rest(ha, kube_admin, cluster, emulator, operator, kubectl):
    """Benchmark: what leader election costs the API server with two replicas at rest (default
    timings). Counted by the API server (apiserver_request_total), less its own Lease traffic
    measured over the same window before the operators start."""
    window = 20.0
    b0 = _lease_requests(kubectl)
    time.sleep(window)
    baseline = _delta(_lease_requests(kubectl), b0)
    emu = emulator(auto_trigger=False)
    cluster.connection("es", emu.url, syncInterval="30s")
    a, id_a, b, id_b = start_pair(operator, kube_admin, ha, (15, 10, 2))
    time.sleep(3)
    w0, la0 = _lease_requests(kubectl), activity(a)["lease"]
    time.sleep(window)
    measured = _delta(_lease_requests(kubectl), w0)
    leader_writes = activity(a)["lease"] - la0
    ops = {verb: (measured.get(verb, 0) - baseline.get(verb, 0)) * 60 / window for verb in set(measured) | set(baseline)}
    total = sum(ops.values())
    print(f"\nLease requests per minute at rest, leader + one standby, retry period 2s: {total:.0f} "
          f"({', '.join(f'{v} {n:.0f}' for v, n in sorted(ops.items()) if n)}); leader's own Lease writes "
          f"{leader_writes * 60 / window:.0f}/min; API server's own Lease traffic {sum(baseline.values()) * 60 / window:.0f}/min "
          f"(subtracted)")
    # one renewal (PUT) by the leader and one read (GET) by the standby per retry period
    assert 25 <= leader_writes * 60 / window <= 33
    assert 45 <= total <= 66
    assert activity(b)["lease"] == 0


def test_leader_that_sees_another_holder_steps_down_with_an_event(ha, kube_admin, cluster, emulator, operator):
    from kubernetes import client

    emu = emulator(auto_trigger=False)
    cluster.connection("es", emu.url, syncInterval="1s")
    a = operator(*le_args(ha, 4, 3, 0.5))
    id_a = wait_identity(a)
    wait_holder(kube_admin, ha, lambda h: h == id_a, timeout=20)
    coord = client.CoordinationV1Api(kube_admin)
    lease = coord.read_namespaced_lease("rollup-operator", ha)
    lease.spec.holder_identity = "someone-else"  # e.g. another installation with the same Lease
    coord.replace_namespaced_lease("rollup-operator", ha, lease)
    t0 = time.monotonic()
    assert a.proc.wait(10) == 1
    assert time.monotonic() - t0 < 0.5 * 1.1 + 1.5 + 0.5  # next renewal, then the Event and the exit
    assert "LOST LEADERSHIP" in a.logs() and "held by 'someone-else'" in a.logs()
    evs = [(e.type, e.reason, e.message) for e in cluster.core.list_namespaced_event(ha).items if e.involved_object.kind == "Lease"]
    assert ("Warning", "LeaderElectionLost", f"{id_a} stopped leading: the Lease is now held by 'someone-else'") in evs
    assert read_lease(kube_admin, ha)["spec"]["holder_identity"] == "someone-else"  # not released, not overwritten


def test_without_the_leader_election_role_the_replica_is_live_but_not_ready(cluster, operator):
    """No Role in this namespace (the `ha` fixture is not used): the Lease cannot be read, so the
    replica says so in its log and its readiness, and never acts; liveness stays up (no restart loop)."""
    a = operator(*le_args(cluster.ns, 4, 3, 0.5), wait_ready=False)
    deadline = time.monotonic() + 20
    while "RBAC denies leader election" not in a.logs():
        assert time.monotonic() < deadline and a.alive(), a.logs()[-3000:]
        time.sleep(0.1)
    assert probe(a, "/healthz") == 200
    with pytest.raises(urllib.error.HTTPError) as e:
        probe(a, "/readyz")
    assert e.value.code == 503
    assert activity(a) == NOTHING and a.alive()
