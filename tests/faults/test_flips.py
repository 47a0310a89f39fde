"""Scenario 4: desiredState flipped 100 times quickly; the newest spec wins and no stale call follows it."""

import time

import pytest

from tests.integration.support import condition, is_ready

from .tools import Watch, calls, connect, wait_for

pytestmark = pytest.mark.apiserver

FLIPS = 100
EPSILON = 0.5


def inconsistent(versions):
    """Stored status versions that contradict themselves: Ready=True whose reason, jobState and
    observedGeneration do not agree with each other and with the spec of that version."""
    bad = []
    for t, o in versions:
        st = o.get("status") or {}
        ready = condition(o, "Ready")
        if ready.get("status") != "True" or st.get("observedGeneration") != o["metadata"]["generation"]:
            continue
        want = {"started": ("Started", ("started", "indexing")), "stopped": ("Stopped", ("stopped",))}[o["spec"]["desiredState"]]
        if ready.get("reason") != want[0] or st.get("jobState") not in want[1] or ready.get("observedGeneration") != st.get("observedGeneration"):
            bad.append((o["metadata"]["resourceVersion"], o["spec"]["desiredState"], ready.get("reason"), st.get("jobState"),
                        ready.get("observedGeneration"), st.get("observedGeneration")))
    return bad


def test_one_hundred_flips(cluster, emulator, operator, report, admin_kubeconfig):
    # epsilon: a call for the previous spec can still arrive after the final flip is committed if the
    # operator sent it before the watch delivered the flip. That window is the observation latency
    # (API server commit -> watch event -> kopf -> controller). We measure an upper bound of it on
    # this machine: the time from a single flip's commit to the arrival of the call it causes
    # (observation + decision + HTTP), three times, and require it to stay below epsilon = 0.5 s,
    # i.e. epsilon is at least the measured worst case with headroom for a loaded 2-core machine.
    row = report("4. desiredState flipped 100 times quickly",
                 f"server ends in the last desired state; Ready at the final generation within 20 s (syncInterval "
                 f"60 s: no help from the periodic read); no call for the opposite state arrives later than "
                 f"T_final + epsilon ({EPSILON} s, >= measured observation latency)")
    emu = emulator(auto_trigger=False)
    w = Watch(admin_kubeconfig, cluster.ns)
    emu.add_job("fl", state="stopped")
    connect(cluster, emu, syncInterval="60s")
    cluster.job("fl", "stopped")
    op = operator()
    cluster.wait_ready("fl", timeout=20)

    # observation latency, measured: commit of a single flip -> arrival of the call it causes
    latencies = []
    for desired in ("started", "stopped", "started", "stopped"):
        action = "start" if desired == "started" else "stop"
        n = len(calls(emu, "fl", action))
        t0 = time.time()
        cluster.set_desired("fl", desired)
        arrived = wait_for(lambda: calls(emu, "fl", action)[n:], 15, f"the {action} call")
        latencies.append(arrived[0].timestamp - t0)
        cluster.wait_ready("fl", timeout=15)
    latency_max = max(latencies[1:])  # the first includes warm-up of the client's connection
    assert latency_max < EPSILON, f"observation latency {latency_max:.3f}s >= epsilon {EPSILON}s: epsilon not justified"

    emu.clear_requests()
    t_first = time.time()
    for i in range(FLIPS):
        desired = "started" if i % 2 == 0 else "stopped"
        obj = cluster.set_desired("fl", desired)
    t_final = time.time()
    final, gen = obj["spec"]["desiredState"], obj["metadata"]["generation"]
    assert final == "stopped"
    obj = cluster.wait("fl", lambda o: is_ready(o) and o["metadata"]["generation"] == gen, timeout=20,
                       what="Ready at the final generation")
    t_ready = time.time()
    assert obj["status"]["observedGeneration"] == gen and obj["status"]["jobState"] == "stopped"
    assert condition(obj, "Ready")["reason"] == "Stopped"
    time.sleep(1.0)  # anything stale still on its way would arrive now
    assert emu.job_state("fl") == "stopped"
    starts, stops = calls(emu, "fl", "start"), calls(emu, "fl", "stop")
    stale = [round(r.timestamp - t_final, 3) for r in starts if r.timestamp > t_final + EPSILON]
    late_any = [round(r.timestamp - t_final, 3) for r in starts if r.timestamp > t_final]
    row.num(flip_rate_per_s=FLIPS / (t_final - t_first), latency_s=[round(x, 3) for x in latencies],
            epsilon_s=EPSILON, starts=len(starts), stops=len(stops), starts_after_T_final_s=late_any,
            ready_after_final_flip_s=t_ready - t_final)
    assert not stale, f"start calls after the final flip to stopped: {stale} s after it"
    bad = inconsistent(w.statuses("fl"))
    w.close()
    row.num(status_versions=len(w.statuses("fl")), self_contradicting=len(bad))
    assert not bad, f"stored statuses claiming Ready with a contradicting jobState/reason: {bad[:5]}"
    assert op.alive() and "Traceback" not in op.logs()


def test_one_hundred_flips_while_stops_are_slow(cluster, emulator, operator, report, admin_kubeconfig):
    # The same, on a job that is indexing and takes 1.5 s to stop: stops wait on the server
    # (wait_for_completion, timeout 1s) and starts are refused while it is stopping, so calls are
    # in flight and abandoned on almost every flip. The final state is started.
    row = report("4b. desiredState flipped 100 times on an indexing job whose stop takes 1.5 s",
                 f"server ends started; Ready at the final generation within 20 s (syncInterval 60 s); no stop call "
                 f"arrives later than T_final + epsilon ({EPSILON} s, as in 4)")
    emu = emulator(auto_trigger=False)
    w = Watch(admin_kubeconfig, cluster.ns)
    emu.add_job("fs", state="started", stop_delay=1.5, pages_per_run=None, page_duration=60)
    assert emu.trigger("fs")
    connect(cluster, emu, syncInterval="60s")
    cluster.job("fs", "started", stop={"timeout": "1s"})
    op = operator()
    cluster.wait_ready("fs", timeout=20)
    t_first = time.time()
    for i in range(FLIPS):
        obj = cluster.set_desired("fs", "stopped" if i % 2 == 0 else "started")
    t_final = time.time()
    gen = obj["metadata"]["generation"]
    assert obj["spec"]["desiredState"] == "started"
    obj = cluster.wait("fs", lambda o: is_ready(o) and o["metadata"]["generation"] == gen, timeout=20,
                       what="Ready at the final generation")
    t_ready = time.time()
    time.sleep(1.0)
    assert emu.job_state("fs") in ("started", "indexing") and obj["status"]["jobState"] in ("started", "indexing")
    stops, starts = calls(emu, "fs", "stop"), calls(emu, "fs", "start")
    stale = [round(r.timestamp - t_final, 3) for r in stops if r.timestamp > t_final + EPSILON]
    row.num(flip_rate_per_s=FLIPS / (t_final - t_first), stops=len(stops), starts=len(starts),
            start_statuses=sorted({r.status for r in starts}),
            stops_after_T_final_s=[round(r.timestamp - t_final, 3) for r in stops if r.timestamp > t_final],
            ready_after_final_flip_s=t_ready - t_final)
    assert not stale, f"stop calls after the final flip to started: {stale} s after it"
    bad = inconsistent(w.statuses("fs"))
    w.close()
    row.num(status_versions=len(w.statuses("fs")), self_contradicting=len(bad))
    assert not bad, f"stored statuses claiming Ready with a contradicting jobState/reason: {bad[:5]}"
    assert op.alive() and "Traceback" not in op.logs()
