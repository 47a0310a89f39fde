"""Failover of the two replicas of manifests/ (Lease leader election, RollingUpdate) on a real
cluster, each with a job in the middle of a stop that is being retried (docs/high-availability.md):

1. ``kubectl delete pod`` of the leader (the Deployment's grace period),
2. the same with ``--grace-period=0 --force``,
3. ``kubectl rollout restart`` of the Deployment.

For each: the job converges (Ready True, stopped), no destructive call is sent during the
scenario (no PUT create, DELETE or _start of any rollup job), every Elasticsearch request came from
the Pod holding the Lease at that instant (so never two replicas acting, never interleaved), and a
``HA figure:`` line gives the measured gap with no leader. Attribution of requests to Pods needs the
wire (tests/e2e/ha_observe.py), so on kind (no request log, no access to the Pod network from here)
only the Lease figures and convergence are checked.
"""

from __future__ import annotations

import json
import time

import pytest

from . import ops
from .ha_observe import LeaseWatch, WireTap, micro_time
from .providers import OP_NS, OPERATOR_USER, wait_for

pytestmark = [pytest.mark.e2e, pytest.mark.slow,
              pytest.mark.filterwarnings("ignore::elasticsearch.exceptions.GeneralAvailabilityWarning")]
LEASE = "rollup-operator"  # --leader-election-id's default; manifests/ does not set it


@pytest.fixture(scope="module")
def ha(cluster):
    ops.install(cluster)
    ops.seed_workload(cluster)
    ops.wait_ready(cluster, "elasticsearchconnection", "e2e-es")
    watch = LeaseWatch(["kubectl", "--kubeconfig", cluster.kubeconfig], OP_NS, LEASE)
    tap = None
    if hasattr(cluster, "node"):  # local-node: the host routes the Pod network over its bridge
        tap = WireTap(9200)
    wait_for(lambda: watch.holder(), 60, "a holder in the Lease watch")
    try:
        yield cluster, watch, tap
    finally:
        watch.close()
        if tap is not None:
            tap.close()


def segments(history, restart_at: float | None = None) -> list[dict]:
    """The Lease's holders in order: {holder, start (acquireTime, or the release's renewTime), last (its last
    write)}. With restart_at (the holder's process was killed then), the holder's first write after it
    starts a new segment: its restarted container (same Pod, same identity) took the Lease back."""
    out: list[dict] = []
    for r in history:
        restarted = (restart_at is not None and out and out[-1]["holder"] == r.holder and r.renew > restart_at
                     and out[-1]["last"] <= restart_at)
        if not out or out[-1]["holder"] != r.holder or restarted:
            start = r.renew if restarted or not r.holder else r.acquire
            out.append({"holder": r.holder, "start": start, "last": r.renew, "transitions": r.transitions})
        else:
            out[-1]["last"] = r.renew
    for a, b in zip(out, out[1:]):
        a["end"] = b["start"]
    if out:
        out[-1]["end"] = float("inf")
    return out


def holder_at(segs: list[dict], t: float) -> str:
    return next((s["holder"] for s in segs if s["start"] <= t < s["end"]), "?")


def attribute(emu_log: list[dict], wire: list, ips: dict[str, str]) -> tuple[list[tuple[dict, str, float]], list]:
    """Pair every logged operator request with the wire request it was (same method and path, seen on
    the wire before the emulator started on it); returns (record, pod, sent at) and unpaired records."""
    pool = [w for w in wire if w.src in ips]
    pairs, unpaired = [], []
    for rec in sorted(emu_log, key=lambda r: r["timestamp"]):
        cands = [w for w in pool if w.method == rec["method"] and w.path == rec["path"]
                 and rec["timestamp"] - 30 <= w.t <= rec["timestamp"] + 0.005]
        if not cands:
            unpaired.append(rec)
            continue
        w = cands[-1]
        pool.remove(w)
        pairs.append((rec, ips[w.src], w.t))
    return pairs, unpaired


def not_holding(pairs, segs) -> list[tuple]:
    """Requests sent by a Pod that did not hold the Lease at the instant it sent them."""
    return [(r["method"], r["path"], t, pod, holder_at(segs, t)) for r, pod, t in pairs if holder_at(segs, t) != pod]


def interleaved(pairs) -> list[str] | None:
    """The senders' runs in time order if a replica sent again after another had sent (else None)."""
    senders = [pod for _r, pod, _t in sorted(pairs, key=lambda x: x[2])]
    runs = [p for i, p in enumerate(senders) if i == 0 or senders[i - 1] != p]
    return runs if len(runs) != len(set(runs)) else None


def destructive(rec: dict) -> bool:
    p = rec["path"]
    if not p.startswith("/_rollup/job/"):
        return False
    return rec["method"] in ("PUT", "DELETE") or (rec["method"] == "POST" and p.endswith("/_start"))


def scenario(c, watch: LeaseWatch, tap: WireTap | None, label: str, name: str, stop_delay: float, disrupt,
             killed: bool = False) -> dict:
    """killed: the leader's process is SIGKILLed; its Pod stays, and its restarted container may take
    the Lease back (same identity) before the other replica's lease duration runs out."""
    ops.make_slow_job(c, name, stop_delay=stop_delay)
    leader = ops.acting_pod(c)
    old = leader["metadata"]["name"]
    assert watch.holder() == old, (watch.holder(), old)
    ips = {p["status"]["podIP"]: p["metadata"]["name"] for p in ops.operator_pods(c)}
    t_start = time.time()
    marks = {}

    def timed_disrupt(pods):
        assert c.es.emulated is False or c.es.job_state(name) == "stopping"  # still stopping at the disruption
        marks["disrupt"] = time.time()
        disrupt(leader)

    facts = ops.disrupt_mid_stop(c, name, timed_disrupt)
    if label == "rollout restart":
        c.wait_rollout(OP_NS, "rollup-operator")
        wait_for(lambda: all(map(ops.ready, ops.operator_pods(c))) and not (
            {p["metadata"]["name"] for p in ops.operator_pods(c)} & facts["before"]), 120, "the restarted Pods")
    for p in ops.operator_pods(c):
        ips[p["status"]["podIP"]] = p["metadata"]["name"]
    if killed:
        new = wait_for(lambda: next((r.holder for r in watch.history() if r.holder and r.renew > marks["disrupt"]), None),
                       60, "a Lease write after the kill")
    else:
        new = wait_for(lambda: (lambda h: h if h and h != old else None)(watch.holder()), 60, "a new Lease holder")
    t_end = time.time()
    segs = [s for s in segments(watch.history(), marks["disrupt"] if killed else None) if s["end"] >= t_start - 30]
    handed = [s for s in segs if s["holder"] and s["start"] >= marks["disrupt"] - 0.5]
    assert handed and handed[-1]["holder"] == new, (segs, new)
    first_new = handed[0]
    prev = [s for s in segs if s["holder"] and s["start"] < first_new["start"]][-1]
    assert prev["holder"] == old, (prev, old)

    log = c.es.requests()
    wire = tap.between(t_start - 1) if tap is not None else []
    by_pod: dict[str, list[float]] = {}
    calls_handover: int | str = "n/a"
    pairs: list[tuple[dict, str, float]] = []
    problems: list[str] = []
    if log is not None:
        ops_log = [r for r in log if r.get("user") == OPERATOR_USER and t_start <= r["timestamp"] <= t_end]
        dup = [r for r in ops_log if destructive(r)]
        if dup:
            problems.append(f"destructive calls during the hand-over: {dup}")
        if tap is not None:
            pairs, unpaired = attribute(ops_log, wire, ips)
            if unpaired:
                problems.append(f"requests in the emulator's log not seen on the wire: {unpaired[:5]}")
            wrong = not_holding(pairs, segs)
            if wrong:
                problems.append(f"requests from a Pod that did not hold the Lease: {wrong}")
            for _r, pod, t in pairs:
                by_pod.setdefault(pod, []).append(t)
            # never interleaved: the senders, in time order, change only at a hand-over
            runs = interleaved(pairs)
            if runs:
                problems.append(f"requests from the replicas interleaved: {runs}")
            # the job was still stopping when the new leader took over: it sent _stop itself
            new_stops = [r for r, pod, _t in pairs if pod == new and r["path"] == f"/_rollup/job/{name}/_stop"]
            if not new_stops:
                problems.append(f"{new} never sent a stop of {name}: the hand-over did not happen mid-stop")
        dups = len(dup)
    else:
        dups = "n/a (no request log)"
    gaps, windows = [], []
    for a, b in zip([prev] + handed, handed):
        i = segs.index(a)
        after = segs[i + 1] if i + 1 < len(segs) else None
        if after is not None and after["holder"] == "":  # released: nobody leads from the release on
            end_a = after["start"]
        else:  # not released (killed): from its last renewal or its last request, whichever is later
            calls = [t for t in by_pod.get(a["holder"], []) if t < b["start"]]
            end_a = max([a["last"]] + calls)
        gaps.append(b["start"] - end_a)
        windows.append((end_a, b["start"]))
    if tap is not None and log is not None:  # requests sent while nobody led (0 unless something is wrong)
        # (exclusive at the start: a killed leader's window starts at its own last request)
        calls_handover = sum(1 for _r, _p, t in pairs if any(a < t < b for a, b in windows))
        if calls_handover:
            problems.append(f"{calls_handover} requests sent while no replica held the Lease: {windows}")
    released = any(s["holder"] == "" and s["start"] >= marks["disrupt"] - 0.5 for s in segs)
    print(f"\nHA figure: {label}: no-leader gap {sum(gaps):.2f} s, calls during hand-over {calls_handover}, "
          f"duplicate destructive calls {dups}")
    first_call = min((t for t in by_pod.get(first_new["holder"], []) if t >= first_new["start"]), default=None)
    detail = {"hand-overs": " -> ".join(s["holder"] for s in [prev] + handed), "gaps_s": [round(g, 2) for g in gaps],
              "released": released, "disrupt_to_acquire_s": round(first_new["start"] - marks["disrupt"], 2),
              "acquire_to_first_call_s": None if first_call is None else round(first_call - first_new["start"], 2),
              "converged_after_disrupt_s": round(facts["seconds"], 1),
              "calls_by_pod": {p: len(ts) for p, ts in by_pod.items()},
              "old_leader_calls_after_disruption": sum(1 for _r, p, t in pairs if p == old and t >= marks["disrupt"]),
              "wire_requests_not_logged": None if tap is None else len(
                  [w for w in wire if w.src in ips and t_start <= w.t <= t_end]) - sum(map(len, by_pod.values()))}
    print(f"HA detail: {label}: {json.dumps(detail)}")
    assert not problems, "\n".join(problems)
    ops.assert_converged_once(c, name, facts)
    return {"disrupt": marks["disrupt"], "segments": segs, "handed": handed, "old": old, "new": new}


def test_delete_leader_pod_with_grace(ha):
    c, watch, tap = ha

    def delete(pod):
        c.kubectl("-n", OP_NS, "delete", "pod", pod["metadata"]["name"], "--wait=false")

    scenario(c, watch, tap, "delete pod (grace)", "ha-grace", 15, delete)


def test_force_delete_leader_pod(ha):
    c, watch, tap = ha

    def force(pod):
        c.kubectl("-n", OP_NS, "delete", "pod", pod["metadata"]["name"], "--grace-period=0", "--force", "--wait=false")

    scenario(c, watch, tap, "delete pod --grace-period=0 --force", "ha-force", 30, force)


def test_rollout_restart(ha):
    c, watch, tap = ha

    def restart(_pod):
        c.kubectl("-n", OP_NS, "rollout", "restart", "deploy/rollup-operator")

    scenario(c, watch, tap, "rollout restart", "ha-restart", 30, restart)


def test_sigkill_of_the_leader_process(ha):
    """Not one of the three disruptions issue 13 names, but the one the others turned out not to be:
    with `--grace-period=0 --force` the kubelet still sends SIGTERM (and SIGKILL only 2 s later), so
    the Lease is released. A crash or the OOM killer sends SIGKILL at once: no release."""
    c, watch, tap = ha
    if not hasattr(c, "node"):
        pytest.skip("SIGKILL of a container's processes from the host needs the local-node provider")

    def kill(pod):
        ops.sigkill_pod_processes(c, pod)

    out = scenario(c, watch, tap, "SIGKILL of the leader's process", "ha-kill", 30, kill, killed=True)
    # it really died: the kubelet restarted the container after a SIGKILL exit, and the first Lease
    # write after the kill is the restarted container's (or the other replica's), not a renewal by
    # the old process
    pod = c.get("-n", OP_NS, "pod", out["old"])
    cs = pod["status"]["containerStatuses"][0]
    assert cs["restartCount"] >= 1 and cs["lastState"]["terminated"]["exitCode"] == 137, cs
    started = micro_time(cs["state"]["running"]["startedAt"])  # whole seconds
    first = out["handed"][0]
    assert first["start"] >= started, (first, cs["state"])
    print(f"HA detail: SIGKILL: container restarted {started - out['disrupt']:+.2f} s after the kill (1 s resolution), "
          f"Lease written by {first['holder']} {first['start'] - out['disrupt']:.2f} s after the kill")
