"""Scenario 5: deletion under deletionPolicy Delete while the job is indexing and every stop times out."""

import time

import pytest

from tests.integration.support import condition

from .tools import StateLog, Watch, calls, connect, wait_for

pytestmark = pytest.mark.apiserver

FINALIZER = "rollup.esops.dev/cleanup"


def test_delete_waits_for_stopped_through_repeated_stop_timeouts(cluster, emulator, operator, report, admin_kubeconfig):
    stop_delay, timeout_s = 5.5, 1
    row = report("5. Delete (policy Delete) while indexing; stops time out repeatedly",
                 "stop retried through >= 3 timeouts; exactly one DELETE, answered 200, arriving after the job "
                 "became stopped (no DELETE answered 500); the RollupJob keeps its finalizer and exists until the "
                 "DELETE was answered, then goes")
    emu = emulator(auto_trigger=False)
    log = StateLog(emu)
    emu.add_job("dx", state="started", stop_delay=stop_delay, pages_per_run=None, page_duration=60)
    assert emu.trigger("dx")
    connect(cluster, emu)
    cluster.job("dx", "started", deletionPolicy="Delete", stop={"timeout": f"{timeout_s}s"})
    w = Watch(admin_kubeconfig, cluster.ns)
    try:
        op = operator()
        cluster.wait_ready("dx", timeout=20)
        t_delete = time.time()
        cluster.delete("dx")
        obj = cluster.wait("dx", lambda o: (o.get("status") or {}).get("stopAttempts", 0) >= 2, timeout=20,
                           what="stop-before-delete retried")
        assert condition(obj, "Ready")["reason"] == "Stopping" and condition(obj, "Reconciling")["status"] == "True"
        assert condition(obj, "Ready")["message"].startswith("stopping before deletion: stop did not complete within 1s")
        cluster.wait_gone("dx", timeout=30)
        gone = wait_for(lambda: w.deleted_at("dx"), 10, "the DELETED watch event")
        t_stopped = log.first("dx", "stopped")
        deletes = emu.requests(method="DELETE")
        stops = calls(emu, "dx", "stop")
        assert t_stopped is not None
        assert [(r.path, r.status) for r in deletes] == [("/_rollup/job/dx", 200)], [(r.path, r.status) for r in deletes]
        d = deletes[0]
        assert d.timestamp > t_stopped, f"DELETE {t_stopped - d.timestamp:.3f}s before the job stopped"
        timeouts = [r for r in stops if r.status == 500]
        assert len(timeouts) >= 3, [r.status for r in stops]
        assert all(r.timestamp < d.timestamp for r in stops)
        after_delete = [n for t, j, _, n in log.events if j == "dx" and t > t_delete]
        assert after_delete == ["stopping", "stopped", "aborting"], after_delete  # aborting: the DELETE itself
        # the object was there, with the finalizer, every time it changed before the DELETE was answered
        # (from the first change that shows the deletion: a change made before it can reach the
        # watch after t_delete under load)
        seen = w.statuses("dx", since=t_delete)
        first = next(t for t, o in seen if o["metadata"].get("deletionTimestamp"))
        before = [(t, o) for t, o in seen if first <= t < d.timestamp + d.duration]
        assert before and all(o["metadata"].get("finalizers") == [FINALIZER] for _, o in before)
        assert all(o["metadata"].get("deletionTimestamp") for _, o in before)
        assert gone > d.timestamp + d.duration - 0.01, f"object gone {d.timestamp - gone:.3f}s before the DELETE answer"
        assert op.alive() and "Traceback" not in op.logs()
        row.num(stop_calls=len(stops), stop_timeouts=len(timeouts), delete_after_stopped_s=d.timestamp - t_stopped,
                gone_after_delete_answer_s=gone - (d.timestamp + d.duration), delete_to_gone_s=gone - t_delete)
    finally:
        w.close()
        log.close()
