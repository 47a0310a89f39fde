"""What the cluster suite does to and reads from a cluster: the install, the workload, the operator
Pods (found by label; one or two replicas, of which one acts), RollupJob conditions and Events."""

from __future__ import annotations

import json
import time

import yaml

from .providers import HERE, NS, OP_LABEL, OP_NS, OPERATOR_USER, Cluster, E2EError, manifest_docs, wait_for

TIMEOUT = 180


def install(c: Cluster) -> None:
    c.kubectl("apply", "-k", str(HERE / "overlay"))
    c.kubectl("wait", "--for=condition=Established", "crd/rollupjobs.rollup.esops.dev",
              "crd/elasticsearchconnections.rollup.esops.dev", "--timeout=60s")
    c.wait_rollout(OP_NS, "rollup-operator", TIMEOUT)


def seed_workload(c: Cluster) -> None:
    """The Elasticsearch side (as the superuser) and the user's side of tests/e2e/rollupjobs.yaml."""
    es = c.es.client
    es.indices.create(index="sensor-data-2024", mappings={"properties": {
        "@timestamp": {"type": "date"}, "host": {"type": "keyword"}, "temperature": {"type": "float"}}})
    if not c.es.emulated:
        for i in range(1, 7):
            es.index(index="sensor-data-2024", document={"@timestamp": f"2024-01-01T0{i}:00:00Z", "host": f"node-{i % 2}",
                                                        "temperature": 20.5 + i})
        es.indices.refresh(index="sensor-data-2024")
    es.rollup.put_job(id="sensor-hourly", index_pattern="sensor-data-*", rollup_index="sensor-rollup",
                      cron="*/5 * * * * ?", page_size=100,
                      groups={"date_histogram": {"field": "@timestamp", "fixed_interval": "1h"},
                              "terms": {"fields": ["host"]}},
                      metrics=[{"field": "temperature", "metrics": ["min", "max", "avg"]}])
    es.rollup.start_job(id="sensor-hourly")
    c.kubectl("create", "namespace", NS)
    c.kubectl("-n", NS, "create", "secret", "generic", "es-rollup-credentials", "--type=kubernetes.io/basic-auth",
              f"--from-literal=username={OPERATOR_USER}", f"--from-literal=password={c.es.operator_password}")
    # A connection may only use Secrets that opt in (docs/security.md).
    c.kubectl("-n", NS, "label", "secret", "es-rollup-credentials", "rollup.esops.dev/credentials=true")
    docs = list(yaml.safe_load_all((HERE / "rollupjobs.yaml").read_text()))
    for d in docs:
        if d["kind"] == "ElasticsearchConnection":
            d["spec"]["url"] = c.es.url_for_operator
    c.kubectl("apply", "-f", "-", input=yaml.safe_dump_all(docs))


def operator_pods(c: Cluster) -> list[dict]:
    return [p for p in c.get("-n", OP_NS, "pods", "-l", OP_LABEL)["items"] if not p["metadata"].get("deletionTimestamp")]


def ready(pod: dict) -> bool:
    conds = {x["type"]: x["status"] for x in pod.get("status", {}).get("conditions", [])}
    return pod.get("status", {}).get("phase") == "Running" and conds.get("Ready") == "True"


def acting_pod(c: Cluster) -> dict:
    """The operator Pod that acts: the leader-election Lease holder if there is one, else the only Pod."""
    pods = [p for p in operator_pods(c) if ready(p)]
    names = {p["metadata"]["name"]: p for p in pods}
    for lease in c.get("-n", OP_NS, "leases")["items"]:
        holder = (lease.get("spec") or {}).get("holderIdentity") or ""
        for n, p in names.items():
            if n in holder:
                return p
    if len(pods) == 1:
        return pods[0]
    raise E2EError(f"cannot tell which of {sorted(names)} acts: no Lease names one")


def rj(c: Cluster, name: str) -> dict:
    return c.get("-n", NS, "rollupjob", name)


def condition(obj: dict, ctype: str) -> dict:
    return next((x for x in (obj.get("status") or {}).get("conditions", []) if x["type"] == ctype), {})


def wait_ready(c: Cluster, kind: str, name: str, timeout: float = TIMEOUT, check=None) -> dict:
    def ok():
        o = c.get("-n", NS, kind, name)
        st = o.get("status") or {}
        good = (st.get("observedGeneration") == o["metadata"]["generation"]
                and condition(o, "Ready").get("status") == "True" and (check is None or check(o)))
        return o if good else None

    return wait_for(ok, timeout, f"{kind}/{name} Ready for its generation",
                    detail=lambda: json.dumps(c.get("-n", NS, kind, name).get("status"), indent=1))


def event_reasons(c: Cluster, name: str) -> list[str]:
    items = c.get("-n", NS, "events", "--field-selector", f"involvedObject.kind=RollupJob,involvedObject.name={name}")
    return [e["reason"] for e in items["items"] for _ in range(max(1, int(e.get("count") or 1)))]


def operator_calls(c: Cluster, method: str, path: str) -> list[dict] | None:
    log = c.es.requests(method=method, path=path)
    return None if log is None else [r for r in log if r.get("user") == OPERATOR_USER]


def make_slow_job(c: Cluster, name: str, stop_delay: float, **spec) -> dict:
    """A managed job (created by the operator, deletionPolicy Delete) whose stop takes stop_delay s."""
    body = {"apiVersion": "rollup.esops.dev/v1alpha1", "kind": "RollupJob", "metadata": {"name": name, "namespace": NS},
            "spec": {"connectionRef": {"name": "e2e-es"}, "desiredState": "started", "deletionPolicy": "Delete",
                     "backoff": {"initial": "1s", "max": "5s"}, "stop": {"timeout": "1s", "waitForCompletion": True},
                     "config": {"indexPattern": "sensor-data-*", "rollupIndex": f"{name}-rollup", "cron": "0 0 * * * ?",
                                "pageSize": 100, "groups": {"dateHistogram": {"field": "@timestamp", "fixedInterval": "1h"}},
                                "metrics": [{"field": "temperature", "metrics": ["max"]}]}, **spec}}
    c.kubectl("apply", "-f", "-", input=json.dumps(body))
    wait_ready(c, "rollupjob", name, check=lambda o: (o.get("status") or {}).get("jobState") in ("started", "indexing"))
    if not c.es.slow_stop(name, stop_delay):
        return rj(c, name)
    wait_for(lambda: c.es.job_state(name) == "indexing", 20, f"{name} indexing on the server")
    return rj(c, name)


def disrupt_mid_stop(c: Cluster, name: str, disrupt) -> dict:
    """Ask for a stop of a slow job, call disrupt() while the stop is being retried, then wait for
    convergence. Returns facts for the assertions."""
    c.kubectl("-n", NS, "patch", "rollupjob", name, "--type=merge", "-p", '{"spec": {"desiredState": "stopped"}}')
    if c.es.emulated:
        wait_for(lambda: (rj(c, name).get("status") or {}).get("stopAttempts", 0) >= 2, 60,
                 f"{name}: a stop that timed out and was retried")
        assert c.es.job_state(name) == "stopping", c.es.job_state(name)
    before = operator_pods(c)
    t0 = time.time()
    disrupt(before)
    obj = wait_ready(c, "rollupjob", name, timeout=TIMEOUT, check=lambda o: o["status"].get("jobState") == "stopped")
    converged = time.time() - t0
    pods = wait_for(lambda: (lambda ps: ps if ps and all(ready(p) for p in ps) else None)(operator_pods(c)), TIMEOUT,
                    "the operator Pods to be Ready again")
    return {"obj": obj, "before": {p["metadata"]["name"] for p in before}, "after": {p["metadata"]["name"] for p in pods},
            "seconds": converged}


def assert_converged_once(c: Cluster, name: str, facts: dict) -> None:
    obj = facts["obj"]
    assert obj["status"]["jobState"] == "stopped" and condition(obj, "Ready")["status"] == "True", obj["status"]
    assert c.es.job_state(name) == "stopped"
    creates = operator_calls(c, "PUT", f"/_rollup/job/{name}")
    if creates is not None:
        assert len(creates) == 1, [(r["status"], r["timestamp"]) for r in creates]
        assert not operator_calls(c, "DELETE", f"/_rollup/job/{name}")
        starts = operator_calls(c, "POST", f"/_rollup/job/{name}/_start")
        assert len(starts) == 1, f"started {len(starts)} times"
    reasons = event_reasons(c, name)
    assert reasons.count("Stopped") == 1, reasons
    # then the delete (deletionPolicy Delete): exactly one DELETE, after which the object is gone
    c.kubectl("-n", NS, "delete", "rollupjob", name, "--wait=true", f"--timeout={TIMEOUT}s")
    assert c.es.job_state(name) == "absent"
    deletes = operator_calls(c, "DELETE", f"/_rollup/job/{name}")
    if deletes is not None:
        assert [r["status"] for r in deletes] == [200], deletes


def rbac_docs() -> list[dict]:
    """The RBAC objects manifests/ declares: rbac.yaml (and the leader-election Role where the
    manifests have one)."""
    return [d for d in manifest_docs() if d["kind"] in ("Role", "ClusterRole", "RoleBinding", "ClusterRoleBinding")]


def sigkill_pod_processes(c: Cluster, pod: dict) -> list[int]:
    """SIGKILL every process of the Pod's (first) container from the host, as a crash or the OOM
    killer would: no SIGTERM, no release. Local-node only (the node is this machine); the container's
    processes are those whose cgroup path names the container ID."""
    import os
    import signal

    if not hasattr(c, "node"):
        raise E2EError("killing a container's processes needs the node's /proc (local-node provider)")
    cid = pod["status"]["containerStatuses"][0]["containerID"].split("://", 1)[1]
    pids = []
    for p in filter(str.isdigit, os.listdir("/proc")):
        try:
            with open(f"/proc/{p}/cgroup") as f:
                if cid in f.read():
                    pids.append(int(p))
        except OSError:
            continue
    if not pids:
        raise E2EError(f"no process on this host is in a cgroup of container {cid}")
    for p in pids:
        os.kill(p, signal.SIGKILL)
    return pids
