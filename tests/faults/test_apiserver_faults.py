"""Scenario 6: the Kubernetes API server restarts (or hangs) under a running operator.

The API server is the session's (shared by every test). It is restarted the hard way, ``kill()``
(SIGKILL, a crash) then ``start()``: the same etcd data, ports, certificates and tokens, as
``restart()`` keeps them, but without the graceful shutdown that waits ~35 s for open watches to
drain; split in two so that Elasticsearch-side changes are made while it is down. Nobody can
change a resource while the API server is down, so resource changes are made right after it is back.
"""

import time

import pytest

from tests.integration.support import condition

from .tools import connect, wait_for

pytestmark = pytest.mark.apiserver


def _ready_all(cluster, names, timeout):
    for n in names:
        cluster.wait_ready(n, timeout=timeout)


def test_apiserver_restart_under_the_operator(cluster, emulator, operator, report, apiserver):
    row = report("6a. kube-apiserver restarted (SIGKILL + start, down ~6 s) under the operator",
                 "same operator process survives; ES-side changes made while it was down are acted on (drift "
                 "corrected) and end up truthfully in status once it is back (incl. a suspended job's state); "
                 "a flip and a new RollupJob made right after it is back converge (watch resumed) within 40 s")
    emu = emulator(auto_trigger=False)
    for jid, state in (("a", "stopped"), ("b", "started"), ("c", "started"), ("e", "stopped"), ("d", "stopped")):
        emu.add_job(jid, state=state)
    connect(cluster, emu, syncInterval="2s")
    cluster.job("a", "stopped")
    cluster.job("b", "started")
    cluster.job("c", "started", suspend=True)
    cluster.job("e", "stopped")
    op = operator()
    _ready_all(cluster, ["a", "b", "c", "e"], 20)
    pid = op.proc.pid

    t_down = time.time()
    apiserver.kill()
    try:
        emu.oob_start("a")   # drift: corrected on the Elasticsearch side even without the API server
        emu.oob_stop("c")    # suspended: only reported, never touched
        emu.oob_delete("e")  # vanished
        wait_for(lambda: emu.job_state("a") == "stopped", 15, "drift on a corrected while the API server is down")
        t_corrected = time.time()
        time.sleep(max(0.0, t_down + 6 - time.time()))
    finally:
        apiserver.start()
    t_up = time.time()
    # changes right after it is back
    cluster.set_desired("b", "stopped")
    cluster.job("d", "started")
    b = cluster.wait_ready("b", timeout=40)
    t_b = time.time()
    d = cluster.wait_ready("d", timeout=40)
    assert b["status"]["jobState"] == "stopped" and emu.job_state("b") == "stopped"
    assert d["status"]["jobState"] == "started" and emu.job_state("d") == "started"
    a = cluster.wait_ready("a", timeout=10)
    assert a["status"]["jobState"] == "stopped" and emu.job_state("a") == "stopped"
    assert emu.job_state("c") == "stopped"
    c = cluster.wait("c", lambda o: (o.get("status") or {}).get("jobState") == "stopped", timeout=20,
                     what="the suspended job's status to show the state it was changed to while the API server was down")
    assert condition(c, "Ready")["status"] == "False" and condition(c, "Ready")["reason"] == "Suspended"
    e = cluster.wait_reason("e", "JobNotFound", timeout=20)
    assert e["status"]["jobState"] == "absent"
    assert op.alive() and op.proc.pid == pid
    assert "Traceback" not in op.logs()
    row.num(down_s=t_up - t_down, drift_corrected_while_down_after_s=t_corrected - t_down,
            flip_ready_after_up_s=t_b - t_up, starts=emu.count("POST", "/_rollup/job/*/_start"))


def test_apiserver_paused_under_the_operator(cluster, emulator, operator, report, apiserver):
    row = report("6b. kube-apiserver frozen (SIGSTOP 5 s) under the operator",
                 "no crash; drift during the freeze corrected on ES and status truthful after it; a flip after "
                 "SIGCONT converges within 30 s")
    emu = emulator(auto_trigger=False)
    emu.add_job("f", state="started")
    emu.add_job("g", state="stopped")
    connect(cluster, emu, syncInterval="2s")
    cluster.job("f", "started")
    cluster.job("g", "stopped")
    op = operator()
    _ready_all(cluster, ["f", "g"], 20)
    t0 = time.time()
    apiserver.pause()
    try:
        emu.oob_stop("f")
        wait_for(lambda: emu.job_state("f") == "started", 15, "drift on f corrected while the API server is frozen")
        t_corrected = time.time()
        time.sleep(max(0.0, t0 + 5 - time.time()))
    finally:
        apiserver.resume()
    t_up = time.time()
    cluster.set_desired("g", "started")
    g = cluster.wait_ready("g", timeout=30)
    t_g = time.time()
    assert g["status"]["jobState"] == "started" and emu.job_state("g") == "started"
    f = cluster.wait_ready("f", timeout=10)
    assert f["status"]["jobState"] == "started"
    assert op.alive() and "Traceback" not in op.logs()
    row.num(frozen_s=t_up - t0, drift_corrected_while_frozen_after_s=t_corrected - t0, flip_ready_after_resume_s=t_g - t_up)
