"""Scenario 11: two RollupJobs with opposite desiredState name the same server job.

Issue 12 item 1: without an owner they flip the job forever (through one connection, two
connections to the same URL, or across namespaces). Now the oldest claim owns the job; the other
is Stalled (``DuplicateJob``) naming the owner, sends nothing, and takes over once the owner is
deleted. One operator process watches two namespaces; three layouts run side by side, each on its
own job id of one emulator, with one user per connection so that every call is attributed:

* a. both RollupJobs on one connection (ns1/es, user alice);
* b. two connections to the same URL (ns1/es-b, bob, owns; ns1/es, alice, duplicate);
* c. two namespaces (ns2/es, carol, owns; ns1/es, alice, duplicate). carol lacks ``monitor``, so
  her connection's cluster is known by its URL only (GET / is forbidden) and the claims meet on it;
* d. a third claim with ``deletionPolicy: Delete`` on layout a is deleted while a duplicate: its
  finalizer is released and nothing is sent;
* e. the operator is restarted with all claims present (both namespaces listed anew): nothing is sent.

The owner is created first with a name that sorts last, so creation order, not the name, decides.
Both orders of creation are run (the ``started`` one first, then the ``stopped`` one first).
"""

from __future__ import annotations

import time

import pytest
from kubernetes import client

from tests.integration.support import Cluster, condition, is_ready

from .tools import StateLog

pytestmark = pytest.mark.apiserver

WINDOW_S = 20.0
RESTART_WINDOW_S = 8.0
WRITES = ("POST", "PUT", "DELETE")
FINALIZER = "rollup.esops.dev/cleanup"


def other(state: str) -> str:
    return "stopped" if state == "started" else "started"


def writes(emu, job_id: str, user: str | None = None, since: float = 0.0) -> list:
    """Requests that could change the job (stop, start, PUT, DELETE), optionally by one user."""
    return [r for r in emu.requests() if r.method in WRITES and r.path.startswith(f"/_rollup/job/{job_id}")
            and (user is None or r.user == user) and r.timestamp >= since]


def soft(wait, *args, **kw) -> bool:
    try:
        wait(*args, **kw)
        return True
    except AssertionError:
        return False


def summary(obj: dict) -> tuple:
    return tuple(condition(obj, t).get("status") for t in ("Ready", "Reconciling", "Stalled")) + (condition(obj, "Ready").get("reason"),)


@pytest.mark.parametrize("first", ["started", "stopped"])
def test_one_owner_per_server_job(cluster, emulator, operator, report, kube_admin, first):
    second = other(first)
    rows = {k: report(f"15{k}. duplicate RollupJobs ({first} one created first): {what}",
                      "the older claim owns the job: the server follows it (one call), it is Ready; the younger is "
                      f"Stalled/DuplicateJob naming it, one DuplicateJob event, and sends 0 writes in {WINDOW_S:g} s; "
                      "after the owner is deleted it takes over (DuplicateResolved) and converges with one call")
            for k, what in (("a", "one connection"), ("b", "two connections to the same URL"),
                            ("c", "two namespaces (one connection without GET /: URL identity)"))}
    rows["d"] = report(f"15d. a duplicate under deletionPolicy Delete is deleted ({first} one first)",
                       "its finalizer is added, then released without any call (no stop, no DELETE); the owner and the "
                       "server are untouched")
    rows["e"] = report(f"15e. the operator restarted with all these claims present ({first} one first)",
                       f"the new process makes no write to any of the three jobs in {RESTART_WINDOW_S:g} s after its start; "
                       "the duplicates are DuplicateJob again, the owners Ready")
    ns2 = f"{cluster.ns}-b"[:63]
    core = client.CoreV1Api(kube_admin)
    core.create_namespace(client.V1Namespace(metadata=client.V1ObjectMeta(name=ns2)))
    cluster2 = Cluster(kube_admin, ns2)
    rollup = ["manage_rollup", "monitor"]
    emu = emulator(auto_trigger=False, users={"alice": {"password": "pw-a", "privileges": rollup},
                                              "bob": {"password": "pw-b", "privileges": rollup},
                                              "carol": {"password": "pw-c", "privileges": ["manage_rollup"]}})
    for jid in ("dup-a", "dup-b", "dup-c"):
        emu.add_job(jid, state=second)  # the owner has to act once to make the server follow it
    log = StateLog(emu)
    try:
        for c, name, user in ((cluster, "es", "alice"), (cluster, "es-b", "bob"), (cluster2, "es", "carol")):
            c.secret(user, {"username": user, "password": f"pw-{user[0]}"})
            c.connection(name, emu.url, syncInterval="2s", auth={"basic": {"secretRef": {"name": user}}})
        op = operator(namespaces=[cluster.ns, ns2])
        # layout: (owner cluster, owner name, owner connection, owner user, duplicate connection, duplicate user)
        layouts = {
            "a": (cluster, "z-owner-a", "es", "alice", "es", "alice"),
            "b": (cluster, "z-owner-b", "es-b", "bob", "es", "alice"),
            "c": (cluster2, "z-owner-c", "es", "carol", "es", "alice"),
        }
        for k, (oc, oname, oconn, _, _, _) in layouts.items():
            oc.job(oname, first, connection=oconn, jobId=f"dup-{k}")
        time.sleep(1.1)  # creationTimestamp has a resolution of one second
        for k, (_, _, _, _, dconn, _) in layouts.items():
            cluster.job(f"a-dup-{k}", second, connection=dconn, jobId=f"dup-{k}")
        cluster.job("a-dup-del", second, connection="es", jobId="dup-a", deletionPolicy="Delete")
        # soft waits: on failure the window still runs, so that the report shows what happened instead
        waited = {k: soft(oc.wait_ready, oname, timeout=20) and soft(cluster.wait_reason, f"a-dup-{k}", "DuplicateJob", timeout=20)
                  for k, (oc, oname, *_rest) in layouts.items()}
        t_settled = time.time()
        waited["d"] = soft(cluster.wait, "a-dup-del", lambda o: FINALIZER in (o["metadata"].get("finalizers") or [])
                           and condition(o, "Ready").get("reason") == "DuplicateJob", timeout=20, what="finalizer + DuplicateJob")
        t_deleted = time.time()
        cluster.delete("a-dup-del")
        waited["d"] = soft(cluster.wait_gone, "a-dup-del", timeout=15) and waited["d"]
        gone_s = time.time() - t_deleted
        t_window = time.time()
        time.sleep(WINDOW_S)
        t_end = time.time()

        for k, (oc, oname, _, ouser, _, duser) in layouts.items():
            row, jid, dup = rows[k], f"dup-{k}", f"a-dup-{k}"
            owner_obj, dup_obj = oc.get(oname), cluster.get(dup)
            all_writes = writes(emu, jid)
            in_window = writes(emu, jid, since=t_window)
            dup_action = [r for r in all_writes if r.path.endswith("_stop" if second == "stopped" else "_start")]
            by_dup_user = writes(emu, jid, duser) if duser != ouser else dup_action
            stalled = condition(dup_obj, "Stalled")
            dup_events = cluster.event_reasons(dup)
            flips = [n for t, j, _, n in log.events if j == jid and t >= t_settled]  # after all was Ready
            ok = (len(all_writes) == 1 and not in_window and not dup_action and not by_dup_user
                  and emu.job_state(jid) in ((first,) if first == "stopped" else ("started", "indexing"))
                  and is_ready(owner_obj) and summary(dup_obj) == ("False", "False", "True", "DuplicateJob")
                  and f"RollupJob {oc.ns}/{oname}" in stalled.get("message", "")
                  and dup_events.count("DuplicateJob") == 1
                  and not flips)
            ok = ok and waited[k]
            row.num(writes_total=len(all_writes), writes_in_window=len(in_window),
                    stops_starts_in_window=f"{sum(r.path.endswith('_stop') for r in in_window)}+{sum(r.path.endswith('_start') for r in in_window)}",
                    window_s=t_end - t_window,
                    nonowner_calls=len(by_dup_user), server_transitions_after_duplicate=len(flips))
            row.check(ok, f"writes={[(r.method, r.path, r.user) for r in all_writes]} dup={summary(dup_obj)} "
                          f"events={dup_events} state={emu.job_state(jid)} flips={flips}")
        deleted_writes = [r for r in emu.requests() if r.method in WRITES and r.timestamp >= t_deleted
                          and r.path.startswith("/_rollup/job/dup-a")]
        rows["d"].num(released_after_s=gone_s, calls=len(deleted_writes))
        rows["d"].check(waited["d"] and not deleted_writes and emu.job_state("dup-a") is not None,
                        f"released={waited['d']} calls={[(r.method, r.path) for r in deleted_writes]}")
        bad = {k: r.result for k, r in rows.items() if r.result not in ("PASS", None)}
        assert not bad, bad

        # a restart with every claim present: the new process sees them all before acting
        assert op.alive() and "Traceback" not in op.logs()
        op.stop()
        t_restart = time.time()
        op = operator(namespaces=[cluster.ns, ns2])
        restarted = all(soft(cluster.wait_reason, f"a-dup-{k}", "DuplicateJob", timeout=10) for k in layouts)
        time.sleep(RESTART_WINDOW_S)
        after_restart = [r for k in layouts for r in writes(emu, f"dup-{k}", since=t_restart)]
        rows["e"].num(writes_after_restart=len(after_restart), window_s=time.time() - t_restart)
        rows["e"].check(restarted and not after_restart and all(is_ready(oc.get(oname)) for oc, oname, *_r in layouts.values()),
                        f"duplicates={restarted} writes={[(r.method, r.path, r.user) for r in after_restart]}")

        # the owners go: each duplicate takes over and converges
        t_del = time.time()
        for oc, oname, *_rest in layouts.values():
            oc.delete(oname)
        for k in layouts:
            cluster.wait_ready(f"a-dup-{k}", timeout=20)
            took = time.time() - t_del
            jid = f"dup-{k}"
            after = writes(emu, jid, since=t_del)
            ok = (emu.job_state(jid) in ((second,) if second == "stopped" else ("started", "indexing"))
                  and len(after) == 1 and "DuplicateResolved" in cluster.wait_events(f"a-dup-{k}", "DuplicateResolved"))
            rows[k].num(takeover_ready_s=took, takeover_calls=len(after))
            rows[k].check(ok and rows[k].result == "PASS", rows[k].result if rows[k].result != "PASS" else f"after={after}")
        assert op.alive() and "Traceback" not in op.logs()
        bad = {k: r.result for k, r in rows.items() if r.result != "PASS"}
        assert not bad, bad
    finally:
        log.close()
        core.delete_namespace(ns2)
