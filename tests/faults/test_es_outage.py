"""Scenarios 1 and 3: Elasticsearch goes away (connections refused) or restarts while a job stops."""

import time

import pytest

from tests.integration.support import condition, is_ready

from .tools import Watch, calls, conditions_summary, connect, es_requests

pytestmark = pytest.mark.apiserver

DOWN_S = 8.0
BACKOFF = {"initial": "250ms", "max": "4s"}


def test_es_unreachable_during_a_stop(cluster, emulator, operator, report, admin_kubeconfig):
    # Bound on Elasticsearch attempts while the server refuses connections for DOWN_S = 8 s, with
    # backoff initial 250ms / max 4s and syncInterval 4s. The dropped stop call is a failure (1); the
    # job then re-reads after 0.5, 1, 2, 4 s (delays 2..5 of the capped exponential series, since the
    # failed stop already counted once) -> 4 reads; the connection's periodic read adds one per 4 s
    # -> 2; a connection check (GET /) may precede a read once -> 1; one more for timer jitter at the
    # window edges. Bound 9. Without backoff growth the job alone re-reads every 0.5 s (16 in 8 s).
    bound = 9
    row = report("1. ES unreachable during a stop (refused 8 s, then back)",
                 "every status written while down: Ready=False, Reconciling=True, reason ElasticsearchUnavailable, "
                 f"jobState unknown, nothing claims Ready; <= {bound} ES attempts while down (backoff 250ms->4s grows; "
                 "sync 4s); no start; no crash/Traceback; Ready (stopped) after recovery, connection Connected again")
    emu = emulator(auto_trigger=False)
    emu.add_job("out", state="started", stop_delay=13, pages_per_run=None, page_duration=60)
    assert emu.trigger("out") and emu.job_state("out") == "indexing"
    connect(cluster, emu, syncInterval="4s")
    cluster.job("out", "stopped", stop={"timeout": "1s"}, backoff=BACKOFF)
    w = Watch(admin_kubeconfig, cluster.ns)
    try:
        op = operator()
        cluster.wait("out", lambda o: (o.get("status") or {}).get("stopAttempts", 0) >= 1, timeout=20,
                     what="the first stop call")
        before = es_requests(op)
        samples = []  # (time, requests so far): when the count moves, an attempt was made
        t_down = time.time()
        emu.go_down()
        while time.time() < t_down + DOWN_S:
            samples.append((time.time(), es_requests(op)))
            time.sleep(0.1)
        during = es_requests(op) - before
        assert op.alive()
        t_up = time.time()
        emu.come_up()
        obj = cluster.wait_ready("out", timeout=30)
        t_ready = time.time()
        assert obj["status"]["jobState"] == "stopped" and emu.job_state("out") == "stopped"
        assert condition(obj, "Ready")["reason"] == "Stopped"
        attempts = [round(t - t_down, 1) for (t, n), (_, m) in zip(samples, samples[1:]) if m > n]
        # every status the operator wrote from the outage's first report to the recovery says so
        t_first = next((t for t, o in w.statuses("out", since=t_down)
                        if condition(o, "Ready").get("reason") == "ElasticsearchUnavailable"), None)
        assert t_first is not None and t_first < t_up, "the outage was never reported in status"
        seen = w.statuses("out", since=t_first, until=t_up)
        unavailable = seen[0][1]
        assert conditions_summary(unavailable) == ("False", "True", "False", "ElasticsearchUnavailable")
        assert "retrying with backoff" in condition(unavailable, "Reconciling")["message"]
        bad = [(round(t - t_down, 2), conditions_summary(o), o["status"].get("jobState")) for t, o in seen
               if conditions_summary(o) != ("False", "True", "False", "ElasticsearchUnavailable")
               or o["status"].get("jobState") != "unknown"]
        assert not bad, bad
        # nothing claimed Ready between going down and coming back
        assert not [t for t, o in w.statuses("out", since=t_down, until=t_up) if is_ready(o)]
        row.num(attempts_while_down=int(during), bound=bound, attempt_times_s=attempts,
                reported_after_s=t_first - t_down, ready_after_recovery_s=t_ready - t_up,
                stop_calls=len(calls(emu, "out", "stop")))
        assert during <= bound, f"{during} Elasticsearch attempts in {DOWN_S}s down (bound {bound}); at {attempts}"
        assert during >= 3, "the operator stopped trying while the server was down"
        assert not calls(emu, "out", "start")
        assert op.alive() and "Traceback" not in op.logs()
        conn = cluster.wait("es", lambda o: condition(o, "Ready").get("reason") == "Connected", timeout=10,
                            plural="elasticsearchconnections", what="connection back")
        assert conn["status"]["reachable"] is True
    finally:
        w.close()


def test_connection_status_while_es_is_down(cluster, emulator, operator, report):
    row = report("1b. ES unreachable: connection status",
                 "ElasticsearchConnection Ready=False (Reconciling) reason ElasticsearchUnavailable, reachable=false, "
                 "lastError set, within one syncInterval (2 s) + 2 s; Connected again within the same bound after recovery")
    emu = emulator(auto_trigger=False)
    connect(cluster, emu, syncInterval="2s")
    operator()
    cluster.wait("es", lambda o: condition(o, "Ready").get("reason") == "Connected", timeout=15,
                 plural="elasticsearchconnections", what="connected")
    t0 = time.time()
    emu.go_down()
    conn = cluster.wait("es", lambda o: condition(o, "Ready").get("reason") == "ElasticsearchUnavailable",
                        timeout=10, plural="elasticsearchconnections", what="connection unavailable")
    t1 = time.time()
    st = conn["status"]
    assert st["reachable"] is False and "cannot reach Elasticsearch" in st["lastError"]
    assert conditions_summary(conn) == ("False", "True", "False", "ElasticsearchUnavailable")
    t_up = time.time()
    emu.come_up()
    conn = cluster.wait("es", lambda o: condition(o, "Ready").get("reason") == "Connected", timeout=10,
                        plural="elasticsearchconnections", what="connection back")
    t2 = time.time()
    assert conn["status"]["reachable"] is True and not conn["status"].get("lastError")
    row.num(reported_after_s=t1 - t0, recovered_after_s=t2 - t_up)
    assert t1 - t0 <= 4.0 and t2 - t_up <= 4.0, (t1 - t0, t2 - t_up)


def test_node_restart_while_stopping(cluster, emulator, operator, report):
    row = report("3. ES node restart while the job is `stopping`",
                 "restart turns stopping into stopped and resets stats: status ends Ready (Stopped), jobState "
                 "stopped, stats equal to the server's (reset); no start call; no Traceback")
    emu = emulator(auto_trigger=False)
    emu.add_job("nr", state="started", stop_delay=30, pages_per_run=None, page_duration=60)
    assert emu.trigger("nr")
    connect(cluster, emu, syncInterval="2s")
    cluster.job("nr", "stopped", stop={"timeout": "2s"}, backoff={"initial": "500ms", "max": "2s"})
    op = operator()
    obj = cluster.wait("nr", lambda o: (o.get("status") or {}).get("stopAttempts", 0) >= 1
                       and (o.get("status") or {}).get("jobState") == "stopping", timeout=20, what="stopping")
    assert emu.job_state("nr") == "stopping"
    stats_before = dict(obj["status"].get("stats") or {})
    t_restart = time.time()
    emu.restart()
    assert emu.job_state("nr") == "stopped"
    obj = cluster.wait_ready("nr", timeout=20)
    t_ready = time.time()
    st = obj["status"]
    assert st["jobState"] == "stopped" and condition(obj, "Ready")["reason"] == "Stopped"
    server = emu.job_stats("nr")
    want = {k: v for k, v in {
        "pagesProcessed": server["pages_processed"], "documentsProcessed": server["documents_processed"],
        "rollupsIndexed": server["rollups_indexed"], "triggerCount": server["trigger_count"],
        "indexTotal": server["index_total"], "searchTotal": server["search_total"]}.items()}
    got = {k: (st.get("stats") or {}).get(k) for k in want}
    assert got == want, (got, want)
    assert all(v == 0 for v in want.values())
    assert not calls(emu, "nr", "start")
    assert emu.job_state("nr") == "stopped"
    assert op.alive() and "Traceback" not in op.logs()
    row.num(ready_after_restart_s=t_ready - t_restart, stop_calls=len(calls(emu, "nr", "stop")),
            trigger_count_before=stats_before.get("triggerCount"), trigger_count_after=st["stats"].get("triggerCount"))
