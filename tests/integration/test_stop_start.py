"""Stopping and starting existing jobs: the heart of the operator (issue: declarative stop/start).

Each test runs the real operator process, with the RBAC of manifests/, against a real
kube-apiserver and the Elasticsearch emulator.
"""

import time

from .support import condition, is_ready


def connect(cluster, emu, name="es", **spec):
    spec.setdefault("syncInterval", "2s")
    cluster.connection(name, emu.url, **spec)


def stop_calls(emu, job_id):
    return [r for r in emu.requests(method="POST") if r.path == f"/_rollup/job/{job_id}/_stop"]


def test_stop_of_an_indexing_job_slower_than_the_timeout_retries_until_stopped(cluster, emulator, operator):
    emu = emulator(auto_trigger=False)
    emu.add_job("slow", state="started", stop_delay=3.5, pages_per_run=None, page_duration=30)
    assert emu.trigger("slow") and emu.job_state("slow") == "indexing"
    connect(cluster, emu)
    cluster.job("slow", "stopped", stop={"timeout": "1s"})
    operator()
    obj = cluster.wait(
        "slow", lambda o: (o.get("status") or {}).get("stopAttempts", 0) >= 1 and condition(o, "Reconciling").get("status") == "True",
        timeout=20, what="a stop in progress")
    assert condition(obj, "Ready")["status"] == "False" and condition(obj, "Ready")["reason"] == "Stopping"
    obj = cluster.wait_ready("slow", timeout=30)
    st = obj["status"]
    assert st["jobState"] == "stopped" and emu.job_state("slow") == "stopped"
    assert condition(obj, "Ready")["reason"] == "Stopped"
    assert condition(obj, "Reconciling")["status"] == "False" and condition(obj, "Stalled")["status"] == "False"
    calls = stop_calls(emu, "slow")
    # several server-side timeouts (1s each) before the 3.5s stop finished, each call waiting on the server
    assert 2 <= len(calls) <= 6, [(r.query, r.status) for r in calls]
    assert all(r.query.get("wait_for_completion") == "true" and r.query.get("timeout") == "1s" for r in calls)
    assert [r.status for r in calls[:-1]] == [500] * (len(calls) - 1) and calls[-1].status == 200
    assert st["stopAttempts"] == len(calls) and st.get("lastStopAttemptTime")
    reasons = cluster.wait_events("slow", "StopRequested", "StopTimedOut", "Stopped")
    assert reasons.count("StopRequested") == 1 and reasons.count("StopTimedOut") == 1 and reasons.count("Stopped") == 1, reasons


def test_9x_timeout_is_429_and_is_not_resent_by_the_client(cluster, emulator, operator):
    emu = emulator(version="9.1.0", auto_trigger=False)
    emu.add_job("j9", state="started", stop_delay=2.5, pages_per_run=None, page_duration=30)
    emu.trigger("j9")
    connect(cluster, emu)
    cluster.job("j9", "stopped", stop={"timeout": "1s"})
    operator()
    cluster.wait_ready("j9", timeout=30)
    calls = stop_calls(emu, "j9")
    assert calls[0].status == 429 and calls[-1].status == 200
    # client retries on 429 are off: consecutive stop calls are at least the server wait apart
    gaps = [b.timestamp - a.timestamp for a, b in zip(calls, calls[1:])]
    assert all(g >= 0.9 for g in gaps), gaps
    conn = cluster.wait("es", lambda o: (o.get("status") or {}).get("version") == "9.1.0", plural="elasticsearchconnections")
    assert conn["status"]["rollupDeprecated"] is True


def test_start_of_a_stopped_job(cluster, emulator, operator):
    emu = emulator(auto_trigger=False)
    emu.add_job("s1", state="stopped")
    connect(cluster, emu)
    cluster.job("s1", "started")
    operator()
    obj = cluster.wait_ready("s1")
    assert obj["status"]["jobState"] == "started" and emu.job_state("s1") == "started"
    assert condition(obj, "Ready")["reason"] == "Started"
    assert len([r for r in emu.requests(method="POST") if r.path.endswith("/_start")]) == 1
    assert sorted(cluster.wait_events("s1", "StartRequested", "Started")) == ["StartRequested", "Started"]


def test_converged_jobs_cost_no_calls_and_no_writes(cluster, emulator, operator):
    emu = emulator(auto_trigger=False)
    emu.add_job("a", state="stopped")
    emu.add_job("b", state="started")
    connect(cluster, emu, syncInterval="1s")
    cluster.job("a", "stopped")
    cluster.job("b", "started")
    operator()
    a, b = cluster.wait_ready("a"), cluster.wait_ready("b")
    rv = (a["metadata"]["resourceVersion"], b["metadata"]["resourceVersion"])
    time.sleep(3.5)  # three sync periods
    a2, b2 = cluster.get("a"), cluster.get("b")
    assert (a2["metadata"]["resourceVersion"], b2["metadata"]["resourceVersion"]) == rv, "status rewritten without a change"
    assert not [r for r in emu.requests(method="POST")], "a converged job was called"
    reads = emu.requests(method="GET", path="/_rollup/job/_all")
    assert 3 <= len(reads) <= 8, len(reads)  # ~one per sync period for the whole connection


def test_flip_during_stop_retries_newest_spec_wins(cluster, emulator, operator):
    emu = emulator(auto_trigger=False)
    emu.add_job("flip", state="started", stop_delay=4, pages_per_run=None, page_duration=30)
    emu.trigger("flip")
    connect(cluster, emu)
    cluster.job("flip", "stopped", stop={"timeout": "1s"})
    operator()
    cluster.wait("flip", lambda o: (o.get("status") or {}).get("stopAttempts", 0) >= 2, timeout=20, what="two stop attempts")
    flipped_at = time.time()
    gen = cluster.set_desired("flip", "started")["metadata"]["generation"]
    obj = cluster.wait_ready("flip", timeout=30)
    assert obj["metadata"]["generation"] == gen and obj["status"]["jobState"] in ("started", "indexing")
    assert emu.job_state("flip") in ("started", "indexing")
    late_stops = [r for r in stop_calls(emu, "flip") if r.timestamp > flipped_at + 0.5]
    assert not late_stops, "a stop was sent after the flip to started was observed"
    starts = [r for r in emu.requests(method="POST") if r.path == "/_rollup/job/flip/_start"]
    assert starts and all(r.timestamp > flipped_at for r in starts)


def test_missing_job_is_stalled_then_found(cluster, emulator, operator):
    emu = emulator(auto_trigger=False)
    connect(cluster, emu, syncInterval="1s")
    cluster.job("ghost", "stopped")
    operator()
    obj = cluster.wait_reason("ghost", "JobNotFound")
    assert condition(obj, "Stalled")["status"] == "True" and obj["status"]["jobState"] == "absent"
    assert "does not exist" in condition(obj, "Stalled")["message"]
    emu.add_job("ghost", state="started")
    obj = cluster.wait_ready("ghost", timeout=20)
    assert emu.job_state("ghost") == "stopped" and condition(obj, "Stalled")["status"] == "False"


def test_forbidden_names_the_missing_privilege(cluster, emulator, operator):
    emu = emulator(auto_trigger=False, users={"viewer": {"password": "viewer-pw", "privileges": ["monitor_rollup"]}})
    emu.add_job("locked", state="started")
    cluster.secret("creds", {"username": "viewer", "password": "viewer-pw"})
    connect(cluster, emu, auth={"basic": {"secretRef": {"name": "creds"}}})
    cluster.job("locked", "stopped")
    op = operator()
    obj = cluster.wait_reason("locked", "Forbidden")
    assert condition(obj, "Stalled")["status"] == "True"
    assert "manage_rollup" in condition(obj, "Stalled")["message"]
    assert emu.job_state("locked") == "started"
    assert "viewer-pw" not in op.logs()
    for ev in cluster.events():
        assert "viewer-pw" not in (ev.message or "")
    assert "viewer-pw" not in str(cluster.get("locked")["status"])


def test_server_down_then_back_converges(cluster, emulator, operator):
    emu = emulator(auto_trigger=False)
    emu.add_job("outage", state="started")
    connect(cluster, emu)
    emu.go_down()
    cluster.job("outage", "stopped", backoff={"initial": "1s", "max": "2s"})
    op = operator()
    obj = cluster.wait_reason("outage", "ElasticsearchUnavailable", timeout=20)
    assert condition(obj, "Reconciling")["status"] == "True" and obj["status"]["jobState"] == "unknown"
    time.sleep(3)
    assert op.alive()
    emu.come_up()
    obj = cluster.wait_ready("outage", timeout=30)
    assert emu.job_state("outage") == "stopped"
    assert "Traceback" not in op.logs()


def test_a_manage_rollup_only_user_is_enough(cluster, emulator, operator):
    """GET / needs 'monitor', which a least-privilege rollup user lacks: the operator carries on without the version."""
    emu = emulator(auto_trigger=False, users={"roller": {"password": "roller-pw", "privileges": ["manage_rollup"]}})
    emu.add_job("lp", state="started")
    cluster.secret("creds", {"username": "roller", "password": "roller-pw"})
    connect(cluster, emu, auth={"basic": {"secretRef": {"name": "creds"}}})
    cluster.job("lp", "stopped")
    operator()
    cluster.wait_ready("lp")
    assert emu.job_state("lp") == "stopped"
    conn = cluster.wait("es", lambda o: condition(o, "Ready").get("status") == "True", plural="elasticsearchconnections")
    assert "monitor privilege" in condition(conn, "Ready")["message"] and "version" not in conn["status"]
