"""Scenario 13: a server that accepts connections and never answers (issue 20). The job and its
connection say within seconds what they are waiting for (``Connecting``, naming the request and
requestTimeout), instead of saying nothing until the request times out; nothing is sent but reads;
once the server answers again the job converges."""

import time

import pytest

from tests.integration.support import condition

from .tools import calls, connect, reason

pytestmark = pytest.mark.apiserver

LATENCY_S = 25.0  # longer than requestTimeout: every request in the window times out
REQUEST_TIMEOUT = "20s"


def current(o: dict) -> bool:
    return (o.get("status") or {}).get("observedGeneration") == o["metadata"]["generation"]


def test_a_silent_server_is_reported_within_seconds(cluster, emulator, operator, report):
    row = report("13. A server that never answers (accepts, holds every request 25 s; requestTimeout 20s)",
                 "the new job and its connection show Ready=False, Reconciling=True, reason Connecting at the current "
                 "generation within 6 s, the message naming the awaited request and requestTimeout; no stop sent while "
                 "silent; no Event for Connecting; Ready (stopped) once the server answers")
    emu = emulator(auto_trigger=False)
    emu.add_job("quiet", state="started")
    emu.set_latency(LATENCY_S)
    op = operator()
    t0 = time.time()
    connect(cluster, emu, requestTimeout=REQUEST_TIMEOUT)
    cluster.job("quiet", "stopped")
    obj = cluster.wait("quiet", lambda o: current(o) and reason(o) == "Connecting", timeout=10,
                       what="the job's Connecting status")
    job_s = time.time() - t0
    conn = cluster.wait("es", lambda o: current(o) and reason(o) == "Connecting", timeout=10,
                        what="the connection's Connecting status", plural="elasticsearchconnections")
    conn_s = time.time() - t0
    msg = condition(obj, "Reconciling")["message"]
    assert condition(obj, "Reconciling")["status"] == "True" and condition(obj, "Ready")["status"] == "False"
    assert condition(obj, "Stalled")["status"] == "False"
    assert "GET /" in msg and "requestTimeout (20s)" in msg, msg
    assert f"ElasticsearchConnection {cluster.ns}/es" in msg, msg
    assert "GET /" in condition(conn, "Reconciling")["message"], conn["status"]
    assert job_s < 6 and conn_s < 6, (job_s, conn_s)
    assert calls(emu, "quiet", "stop") == []
    events = cluster.core.list_namespaced_event(cluster.ns).items
    assert not [e for e in events if e.reason == "Connecting"], "Connecting is provisional: no Event"
    emu.set_latency(0)
    obj = cluster.wait_ready("quiet", timeout=90)
    ready_s = time.time() - t0
    assert obj["status"]["jobState"] == "stopped" and emu.job_state("quiet") == "stopped"
    row.num(job_connecting_after_s=job_s, connection_connecting_after_s=conn_s, ready_after_answers_s=ready_s)
    assert op.alive() and "Traceback" not in op.logs()
