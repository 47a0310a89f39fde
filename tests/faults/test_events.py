"""Scenario 17 (issue 12, item 7): an outage is not drift, Events aggregate, a stop abandoned by
SIGTERM counts.

16a Elasticsearch down and back under a converged job: no DriftDetected; drift during an outage
    and drift with the server up each give exactly one.
16b Elasticsearch flapping every second for a minute: few Event objects, counted (count > 1).
16c SIGTERM while a stop waits on the server: the abandoned call is in stopAttempts after restart.
"""

import time

import pytest

from tests.integration.support import condition

from .tools import calls, connect, wait_for

pytestmark = pytest.mark.apiserver


def occurrences(cluster, name: str, reason: str | None = None) -> int:
    """Occurrences of Events about ``name`` (an aggregated Event counts ``count`` times)."""
    return sum(e.count or 1 for e in cluster.events(name) if reason is None or e.reason == reason)


def test_outage_is_not_drift_and_real_drift_is_one_event(cluster, emulator, operator, report):
    row = report("16a. ES down 4 s and back under a converged job; then the job started behind the operator's "
                 "back, once during an outage and once with the server up",
                 "no DriftDetected for the outage (the server state never changed); exactly one DriftDetected per real "
                 "change (also one made while the server was unreachable); each corrected (stopped again)")
    emu = emulator(auto_trigger=False)
    emu.add_job("calm", state="stopped")
    connect(cluster, emu, syncInterval="1s")
    cluster.job("calm", "stopped", backoff={"initial": "250ms", "max": "1s"})
    op = operator()
    cluster.wait_ready("calm", timeout=20)
    t0 = time.time()
    emu.go_down()
    cluster.wait_reason("calm", "ElasticsearchUnavailable", timeout=10)
    time.sleep(4)
    emu.come_up()
    cluster.wait_ready("calm", timeout=15)
    time.sleep(2)  # a sync or two more with the server back
    outage_drift = occurrences(cluster, "calm", "DriftDetected")
    row.num(drift_events_for_outage=outage_drift, outage_s=round(time.time() - t0, 1))
    assert outage_drift == 0, [(e.reason, e.count, e.message) for e in cluster.events("calm")]
    assert emu.job_state("calm") == "stopped" and not calls(emu, "calm", "stop"), "nothing to correct"

    # A real change, made while the operator cannot see the server: it is drift once the server answers.
    emu.go_down()
    cluster.wait_reason("calm", "ElasticsearchUnavailable", timeout=10)
    emu.oob_start("calm")
    time.sleep(1)
    emu.come_up()
    wait_for(lambda: occurrences(cluster, "calm", "DriftDetected") >= 1, 20, "DriftDetected after the outage")
    cluster.wait("calm", lambda o: condition(o, "Ready").get("reason") == "Stopped"
                 and emu.job_state("calm") == "stopped", timeout=20, what="corrected")
    time.sleep(2)
    during = occurrences(cluster, "calm", "DriftDetected")
    row.num(drift_events_change_during_outage=during)
    assert during == 1, [(e.reason, e.count, e.message) for e in cluster.events("calm")]

    # A real change with the server up.
    emu.oob_start("calm")
    wait_for(lambda: occurrences(cluster, "calm", "DriftDetected") >= 2, 20, "DriftDetected")
    cluster.wait("calm", lambda o: condition(o, "Ready").get("reason") == "Stopped"
                 and emu.job_state("calm") == "stopped", timeout=20, what="corrected")
    time.sleep(2)
    total = occurrences(cluster, "calm", "DriftDetected")
    row.num(drift_events_total=total, stop_calls=len(calls(emu, "calm", "stop")))
    assert total == 2
    assert op.alive() and "Traceback" not in op.logs()


FLAP_S = 60.0


def test_flapping_elasticsearch_gives_few_counted_events(cluster, emulator, operator, report):
    row = report(f"16b. ES flapping (down 1 s / up 1 s) for {FLAP_S:.0f} s under a converged job",
                 "repeats of an Event are counts on it: at most 4 Event objects for the job (at most 12 for the "
                 "connection), some with count > 1; no DriftDetected; Ready (stopped) at the end")
    emu = emulator(auto_trigger=False)
    emu.add_job("flap", state="stopped")
    connect(cluster, emu, syncInterval="1s")
    cluster.job("flap", "stopped", backoff={"initial": "250ms", "max": "1s"})
    op = operator()
    cluster.wait_ready("flap", timeout=20)
    base_job, base_conn = len(cluster.events("flap")), len(cluster.events("es"))
    t0 = time.time()
    while time.time() < t0 + FLAP_S:
        emu.go_down()
        time.sleep(1.0)
        emu.come_up()
        time.sleep(1.0)
    cluster.wait_ready("flap", timeout=15)
    time.sleep(2)
    job_events, conn_events = cluster.events("flap"), cluster.events("es")
    objects_job, objects_conn = len(job_events) - base_job, len(conn_events) - base_conn
    occ_job = sum(e.count or 1 for e in job_events)
    row.num(event_objects_job=objects_job, occurrences_job=occ_job,
            event_objects_connection=objects_conn, occurrences_connection=sum(e.count or 1 for e in conn_events),
            max_count=max((e.count or 1) for e in job_events + conn_events),
            by_reason="; ".join(f"{e.reason} x{e.count}" for e in job_events), seconds=round(time.time() - t0, 1))
    assert not [e for e in job_events if e.reason == "DriftDetected"], [(e.reason, e.count) for e in job_events]
    assert objects_job <= 4, [(e.reason, e.count, e.message) for e in job_events]
    assert objects_conn <= 12, [(e.reason, e.count, e.message) for e in conn_events]
    assert any((e.count or 1) > 1 for e in job_events), "no Event was counted"
    assert emu.job_state("flap") == "stopped" and op.alive() and "Traceback" not in op.logs()


def test_sigterm_during_a_stop_counts_the_abandoned_call(cluster, emulator, operator, report):
    row = report("16c. SIGTERM while a stop waits on the server (wait_for_completion, timeout 30s), restart",
                 "the operator exits cleanly and the stored status already counts the abandoned stop (stopAttempts 1); "
                 "after restart stopAttempts = 1 + the new process's stop calls; Ready (stopped)")
    emu = emulator(auto_trigger=False)
    emu.add_job("term", state="started", stop_delay=12, pages_per_run=None, page_duration=60)
    assert emu.trigger("term") and emu.job_state("term") == "indexing"
    connect(cluster, emu)
    cluster.job("term", "stopped", stop={"timeout": "30s"})
    op1 = operator()
    wait_for(lambda: emu.job_state("term") == "stopping", 20, "the stop to arrive", 0.02)
    cluster.wait_reason("term", "Stopping", timeout=10)
    time.sleep(0.3)
    t_term = time.time()
    rc = op1.stop()
    exit_s = time.time() - t_term
    assert rc == 0, rc
    assert emu.job_state("term") == "stopping", "the job must still be stopping when the operator is gone"
    recorded = (cluster.get("term")["status"] or {}).get("stopAttempts")
    row.num(stop_attempts_after_sigterm=recorded, exit_s=round(exit_s, 2))
    assert recorded == 1, f"stopAttempts after SIGTERM: {recorded}"
    t_restart = time.time()
    op2 = operator()
    obj = cluster.wait_ready("term", timeout=30)
    after = [r for r in calls(emu, "term", "stop") if r.timestamp > t_restart]
    row.num(stop_calls_after_restart=len(after), stop_attempts_final=obj["status"]["stopAttempts"],
            restart_to_ready_s=round(time.time() - t_restart, 2))
    assert obj["status"]["stopAttempts"] == 1 + len(after), (obj["status"]["stopAttempts"], len(after))
    assert obj["status"]["jobState"] == "stopped" and "Traceback" not in op2.logs()
