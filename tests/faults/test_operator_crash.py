"""Scenario 2: the operator process is SIGKILLed in the middle of a stop retry loop and restarted."""

import time

import pytest

from tests.integration.support import condition

from .tools import StateLog, Watch, calls, connect, wait_for

pytestmark = pytest.mark.apiserver

FINALIZER = "rollup.esops.dev/cleanup"


def _indexing_job(emu, job_id, stop_delay):
    emu.add_job(job_id, state="started", stop_delay=stop_delay, pages_per_run=None, page_duration=60)
    assert emu.trigger(job_id) and emu.job_state(job_id) == "indexing"


def test_sigkill_during_stop_retries_then_restart(cluster, emulator, operator, report):
    row = report("2a. SIGKILL during a stop retry loop, restart (Retain)",
                 "the restarted process resumes and converges (Ready, stopped); no start, no DELETE, no stop after the "
                 "job reached stopped; status.stopAttempts counts every stop call of the generation (both processes); "
                 "one Stopped event")
    emu = emulator(auto_trigger=False)
    log = StateLog(emu)
    _indexing_job(emu, "k", stop_delay=7)
    connect(cluster, emu)
    cluster.job("k", "stopped", stop={"timeout": "1s"})
    op1 = operator()
    cluster.wait("k", lambda o: (o.get("status") or {}).get("stopAttempts", 0) >= 2, timeout=20,
                 what="a stop that timed out and was retried")
    t_kill = time.time()
    op1.kill()
    time.sleep(1.0)  # nobody is watching; the job keeps stopping on the server (and a write in flight lands)
    recorded = cluster.get("k")["status"]["stopAttempts"]  # what the killed process had written
    before = len(calls(emu, "k", "stop"))
    op2 = operator()
    t_restart = time.time()
    obj = cluster.wait_ready("k", timeout=30)
    t_ready = time.time()
    assert obj["status"]["jobState"] == "stopped" and emu.job_state("k") == "stopped"
    stops = calls(emu, "k", "stop")
    t_stopped = log.first("k", "stopped")
    assert t_stopped is not None
    assert not calls(emu, "k", "start") and not emu.requests(method="DELETE")
    late = [round(r.timestamp - t_stopped, 3) for r in stops if r.timestamp > t_stopped]
    assert not late, f"stop calls after the job had stopped: {late}"
    assert len(stops) > before, "the restarted process did not resume the stop"
    # A call whose answer died with the first process cannot be known to the second: the count goes
    # on from what the first one recorded, plus every call of the second.
    after = [r for r in stops if r.timestamp > t_kill]
    assert obj["status"]["stopAttempts"] == recorded + len(after), (obj["status"]["stopAttempts"], recorded, len(after))
    # The Stopped Event is posted right after the Ready status it describes: give it a moment.
    wait_for(lambda: "Stopped" in cluster.event_reasons("k"), timeout=5, what="the Stopped event")
    time.sleep(0.5)  # a duplicate, if any, would come as fast
    reasons = cluster.event_reasons("k")
    assert reasons.count("Stopped") == 1 and reasons.count("StopRequested") == 1, reasons
    assert reasons.count("StopTimedOut") == 1, reasons
    assert "Traceback" not in op2.logs()
    row.num(stop_calls_before_kill=before, recorded_at_kill=recorded, stop_calls_total=len(stops),
            status_stop_attempts=obj["status"]["stopAttempts"], restart_to_ready_s=t_ready - t_restart,
            kill_to_ready_s=t_ready - t_kill)
    log.close()


def test_sigkill_during_stop_before_delete_then_restart(cluster, emulator, operator, report, admin_kubeconfig):
    row = report("2b. SIGKILL during the stop-before-delete (deletionPolicy Delete), restart",
                 "exactly one DELETE (200), sent after the job reached stopped; no stop after it; the RollupJob "
                 "(finalizer) goes only after the DELETE succeeded")
    emu = emulator(auto_trigger=False)
    log = StateLog(emu)
    _indexing_job(emu, "kd", stop_delay=7)
    connect(cluster, emu)
    cluster.job("kd", "started", deletionPolicy="Delete", stop={"timeout": "1s"})
    w = Watch(admin_kubeconfig, cluster.ns)
    try:
        op1 = operator()
        obj = cluster.wait_ready("kd", timeout=20)
        assert obj["metadata"]["finalizers"] == [FINALIZER]
        t_delete = time.time()
        cluster.delete("kd")
        cluster.wait("kd", lambda o: (o.get("status") or {}).get("stopAttempts", 0) >= 2
                     and condition(o, "Ready").get("message", "").startswith("stopping before deletion"), timeout=20, what="stop-before-delete retried")
        op1.kill()
        before = len(calls(emu, "kd", "stop"))
        assert not emu.requests(method="DELETE")
        time.sleep(1.0)
        op2 = operator()
        cluster.wait_gone("kd", timeout=30)
        gone = wait_for(lambda: w.deleted_at("kd"), 10, "the DELETED watch event")
        deletes = emu.requests(method="DELETE")
        assert [(r.path, r.status) for r in deletes] == [("/_rollup/job/kd", 200)], [(r.path, r.status) for r in deletes]
        t_stopped = log.first("kd", "stopped")
        assert t_stopped is not None and deletes[0].timestamp > t_stopped
        assert emu.job_state("kd") is None
        stops = calls(emu, "kd", "stop")
        assert len(stops) > before
        assert all(r.timestamp < deletes[0].timestamp for r in stops), (
            [(round(r.timestamp - deletes[0].timestamp, 3), r.status) for r in stops], t_stopped - deletes[0].timestamp)
        # the object existed, with its finalizer, until the DELETE had been answered
        assert gone > deletes[0].timestamp + deletes[0].duration - 0.01
        held = [o for t, o in w.statuses("kd", since=t_delete) if t < deletes[0].timestamp + deletes[0].duration]
        assert held and all(o["metadata"].get("finalizers") == [FINALIZER] for o in held)
        assert "Traceback" not in op2.logs()
        row.num(stop_calls_before_kill=before, stop_calls_total=len(stops),
                delete_after_stopped_s=deletes[0].timestamp - t_stopped, object_gone_after_delete_s=gone - deletes[0].timestamp)
    finally:
        w.close()
        log.close()


def test_sigkill_while_the_delete_is_in_flight(cluster, emulator, operator, report, admin_kubeconfig):
    # The DELETE is held 2 s by the emulator (latency switched on the moment the job stops), and the
    # operator is killed while it waits for the answer: the server deletes the job, the operator never
    # hears it. The restarted process must see the job absent and only release the finalizer.
    latency = 2.0
    row = report("2c. SIGKILL while the DELETE is in flight (answer never received), restart",
                 "the server deletes the job once; the restarted process sends no second DELETE and no stop, and "
                 "releases the finalizer (object gone after the DELETE)")
    emu = emulator(auto_trigger=False)
    log = StateLog(emu)
    _indexing_job(emu, "kf", stop_delay=2.5)

    def slow_after_stop(job, old, new):
        if job.id == "kf" and new == "stopped":
            emu.emulator.set_latency(latency)

    emu.loop_thread.call(lambda: emu.emulator.cluster.listeners.append(slow_after_stop))
    connect(cluster, emu)
    cluster.job("kf", "started", deletionPolicy="Delete", stop={"timeout": "1s"})
    w = Watch(admin_kubeconfig, cluster.ns)
    try:
        op1 = operator()
        cluster.wait_ready("kf", timeout=20)
        cluster.delete("kf")
        wait_for(lambda: "delete rollup job [kf]" in op1.logs(), 20, "the operator to send the DELETE", 0.02)
        time.sleep(latency / 4)  # the DELETE is on the wire / held by the server
        t_kill = time.time()
        op1.kill()
        emu.set_latency(0.0)
        deletes = wait_for(lambda: emu.requests(method="DELETE"), 10, "the held DELETE to be processed")
        in_flight = deletes[0].timestamp < t_kill < deletes[0].timestamp + deletes[0].duration
        op2 = operator()
        cluster.wait_gone("kf", timeout=30)
        gone = wait_for(lambda: w.deleted_at("kf"), 10, "the DELETED watch event")
        time.sleep(0.5)
        deletes = emu.requests(method="DELETE")
        assert [(r.path, r.status) for r in deletes] == [("/_rollup/job/kf", 200)]
        assert in_flight, ("the kill did not land while the DELETE was held", deletes[0].timestamp - t_kill)
        assert not [r for r in calls(emu, "kf", "stop") if r.timestamp > deletes[0].timestamp]
        assert gone > deletes[0].timestamp
        assert emu.job_state("kf") is None and "Traceback" not in op2.logs()
        row.num(delete_arrival_before_kill_s=t_kill - deletes[0].timestamp, delete_held_s=deletes[0].duration,
                object_gone_after_restart_s=gone - t_kill)
    finally:
        w.close()
        log.close()


def test_sigkill_during_stop_then_flip_to_started_while_down(cluster, emulator, operator, report):
    row = report("2d. SIGKILL during a stop retry loop, desiredState flipped to started while no operator runs, restart",
                 "the restarted process does not resume the stale stop (no stop call after the flip), waits for the "
                 "job to finish stopping, starts it exactly once, and no stop follows that start; Ready (started)")
    emu = emulator(auto_trigger=False)
    log = StateLog(emu)
    _indexing_job(emu, "kk", stop_delay=5)
    connect(cluster, emu)
    cluster.job("kk", "stopped", stop={"timeout": "1s"})
    op1 = operator()
    cluster.wait("kk", lambda o: (o.get("status") or {}).get("stopAttempts", 0) >= 2, timeout=20,
                 what="a stop that timed out and was retried")
    op1.kill()
    time.sleep(0.3)
    t_flip = time.time()
    gen = cluster.set_desired("kk", "started")["metadata"]["generation"]
    op2 = operator()
    obj = cluster.wait("kk", lambda o: o["metadata"]["generation"] == gen and condition(o, "Ready").get("status") == "True"
                       and (o.get("status") or {}).get("observedGeneration") == gen, timeout=30, what="Ready (started)")
    time.sleep(0.5)
    assert obj["status"]["jobState"] in ("started", "indexing") and emu.job_state("kk") in ("started", "indexing")
    stops, starts = calls(emu, "kk", "stop"), calls(emu, "kk", "start")
    stale = [round(r.timestamp - t_flip, 3) for r in stops if r.timestamp > t_flip]
    assert not stale, f"stop calls after the flip to started: {stale}"
    assert [r.status for r in starts] == [200], [(r.status, r.timestamp - t_flip) for r in starts]
    t_stopped = log.first("kk", "stopped")
    assert t_stopped is not None and starts[0].timestamp > t_stopped
    assert not [r for r in stops if r.timestamp > starts[0].timestamp]
    assert "Traceback" not in op2.logs()
    row.num(stop_calls=len(stops), start_after_stopped_s=starts[0].timestamp - t_stopped,
            flip_to_ready_s=time.time() - 0.5 - t_flip)
    log.close()
