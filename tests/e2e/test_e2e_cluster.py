"""The end-to-end suite on a real cluster, once per provider (tests/e2e/providers.py): the
operator installed from manifests/ as users install it, running as a Pod from the image built
from this tree. Tests run in file order on one cluster per provider.

Written to hold for one replica with Recreate and for two replicas with leader election and
RollingUpdate: operator Pods are found by label, the acting one is the Lease holder (or the only
Pod), and the disruption tests assert convergence and no duplicated calls, whatever the strategy.
"""

from __future__ import annotations

import json

import pytest

from . import ops
from .providers import NS, OP_NS, OP_SA, wait_for

pytestmark = [pytest.mark.e2e, pytest.mark.slow,
              pytest.mark.filterwarnings("ignore::elasticsearch.exceptions.GeneralAvailabilityWarning")]
SA = f"system:serviceaccount:{OP_NS}:{OP_SA}"


@pytest.fixture(scope="module")
def installed(cluster):
    ops.install(cluster)
    return cluster


@pytest.fixture(scope="module")
def workload(installed):
    ops.seed_workload(installed)
    return installed


def test_deployment_available_as_manifests_say(installed):
    c = installed
    c.kubectl("-n", OP_NS, "wait", "--for=condition=Available", "deploy/rollup-operator", "--timeout=120s")
    dep = c.get("-n", OP_NS, "deploy", "rollup-operator")
    pods = ops.operator_pods(c)
    assert 1 <= len(pods) <= 2 and len(pods) == dep["spec"]["replicas"], [p["metadata"]["name"] for p in pods]
    pod = ops.acting_pod(c)
    name = pod["metadata"]["name"]
    spec = pod["spec"]["containers"][0]
    assert spec["image"].endswith("rollup-operator:e2e") and spec["imagePullPolicy"] == "Never"
    # uid/gid 65532 as the kernel sees the process, and a read-only root (only /tmp writable)
    status = c.kubectl("-n", OP_NS, "exec", name, "--", "cat", "/proc/1/status").stdout
    uids = next(ln.split()[1:] for ln in status.splitlines() if ln.startswith("Uid:"))
    gids = next(ln.split()[1:] for ln in status.splitlines() if ln.startswith("Gid:"))
    assert set(uids) == {"65532"} and set(gids) == {"65532"}, (uids, gids)
    w = c.kubectl("-n", OP_NS, "exec", name, "--", "touch", "/probe-write", check=False)
    assert w.returncode != 0 and "Read-only file system" in w.stderr, (w.returncode, w.stderr)
    c.kubectl("-n", OP_NS, "exec", name, "--", "touch", "/tmp/probe-write")
    # probes: both declared, passing (Ready, no restarts), and the endpoints answer through the Pod IP
    assert spec["livenessProbe"]["httpGet"]["path"] == "/healthz" and spec["readinessProbe"]["httpGet"]["path"] == "/readyz"
    assert all(ops.ready(p) for p in pods)
    assert all(cs["restartCount"] == 0 for p in pods for cs in p["status"]["containerStatuses"])
    assert c.http_get(pod, 8080, "/healthz")[0] == 200
    # the liveness probe's target answers on every replica, the standby's too (kopf, and so its own
    # liveness endpoint on 8080, runs on the leader only: probing that would restart the standby)
    assert spec["livenessProbe"]["httpGet"]["port"] in ("metrics", 9090)
    assert all(c.http_get(p, 9090, "/healthz")[0] == 200 for p in pods)
    assert c.http_get(pod, 9090, "/readyz")[0] == 200
    code, metrics = c.http_get(pod, 9090, "/metrics")
    assert code == 200 and "# TYPE" in metrics and "python_info" in metrics, metrics[:300]
    # in-cluster config: no kubeconfig anywhere, the projected ServiceAccount token is what it uses
    env = c.kubectl("-n", OP_NS, "exec", name, "--", "cat", "/proc/1/environ").stdout.split("\0")
    assert not [e for e in env if e.startswith("KUBECONFIG=")] and any(e.startswith("KUBERNETES_SERVICE_HOST=") for e in env)
    assert "--kubeconfig" not in " ".join(spec.get("args", []) + spec.get("command", []))
    find = c.kubectl("-n", OP_NS, "exec", name, "--", "python", "-c",
                     "import glob; print(glob.glob('/tmp/**/*kubeconfig*', recursive=True) + glob.glob('/tmp/.kube/*'))")
    assert find.stdout.strip() == "[]", find.stdout
    c.kubectl("-n", OP_NS, "exec", name, "--", "test", "-s", "/var/run/secrets/kubernetes.io/serviceaccount/token")
    assert pod["spec"]["serviceAccountName"] == OP_SA


def test_rbac_is_exactly_what_manifests_declare(installed):
    c = installed
    want = {(d["kind"], d["metadata"].get("namespace"), d["metadata"]["name"]): d for d in ops.rbac_docs()}
    for (kind, ns, name), d in want.items():
        live = c.get(*(["-n", ns] if ns else []), kind.lower(), name)
        for key in ("rules", "roleRef", "subjects"):
            assert live.get(key) == d.get(key), (kind, name, key, live.get(key), d.get(key))
    # nothing else grants the ServiceAccount anything
    bindings = c.get("clusterrolebindings")["items"] + c.get("rolebindings", "-A")["items"]
    granted = {(b["kind"], b["metadata"].get("namespace"), b["metadata"]["name"]) for b in bindings
               for s in b.get("subjects") or [] if s.get("kind") == "ServiceAccount" and s.get("name") == OP_SA
               and s.get("namespace") == OP_NS}
    assert granted == {k for k in want if k[0].endswith("Binding")}, granted
    can = lambda *a: c.kubectl("auth", "can-i", *a, f"--as={SA}", check=False).stdout.strip()  # noqa: E731
    assert can("watch", "rollupjobs.rollup.esops.dev", "-A") == "yes"
    assert can("list", "secrets", "-A") == "no"
    # delete on rollupjobs is granted for one thing only: a RollupMigration's cut-over under jobPolicy
    # Delete removes the RollupJob it migrated (manifests/rbac.yaml); nothing cluster-wide beyond it
    assert can("delete", "rollupjobs.rollup.esops.dev", "-A") == "yes"
    assert can("delete", "elasticsearchconnections.rollup.esops.dev", "-A") == "no"
    assert can("delete", "rollupmigrations.rollup.esops.dev", "-A") == "no"
    assert can("create", "pods", "-n", OP_NS) == "no"


def test_the_kind_suite_assertions(workload):
    c = workload
    ops.wait_ready(c, "elasticsearchconnection", "e2e-es")
    ops.wait_ready(c, "rollupjob", "sensor-hourly", check=lambda o: o["status"].get("jobState") in ("started", "indexing"))
    managed = ops.wait_ready(c, "rollupjob", "sensor-managed")
    assert managed["status"].get("managed") is True and "rollup.esops.dev/cleanup" in managed["metadata"]["finalizers"]
    assert c.es.job_state("sensor-managed") in ("started", "indexing")
    # a stop through several wait_for_completion timeouts (where the server's timing can be set)
    slow = c.es.slow_stop("sensor-hourly", 6)
    c.kubectl("-n", NS, "patch", "rollupjob", "sensor-hourly", "--type=merge",
              "-p", json.dumps({"spec": {"desiredState": "stopped", "stop": {"timeout": "1s", "waitForCompletion": True}}}))
    obj = ops.wait_ready(c, "rollupjob", "sensor-hourly", check=lambda o: o["status"].get("jobState") == "stopped")
    assert c.es.job_state("sensor-hourly") == "stopped"
    if slow:
        assert obj["status"]["stopAttempts"] >= 3, obj["status"]
        stops = ops.operator_calls(c, "POST", "/_rollup/job/sensor-hourly/_stop")
        assert len(stops) >= 3 and all(r["query"].get("wait_for_completion") == "true" for r in stops), stops
    wait_for(lambda: {"StopRequested", "Stopped"} <= set(ops.event_reasons(c, "sensor-hourly")), 60, "the Events")
    reasons = ops.event_reasons(c, "sensor-hourly")
    assert reasons.count("Stopped") == 1 and (not slow or "StopTimedOut" in reasons), reasons
    # started again
    c.kubectl("-n", NS, "patch", "rollupjob", "sensor-hourly", "--type=merge", "-p", '{"spec": {"desiredState": "started"}}')
    ops.wait_ready(c, "rollupjob", "sensor-hourly", check=lambda o: o["status"].get("jobState") in ("started", "indexing"))
    assert c.es.job_state("sensor-hourly") in ("started", "indexing")
    # deletionPolicy Delete: the job goes from the server; Retain: it stays
    c.kubectl("-n", NS, "delete", "rollupjob", "sensor-managed", "--wait=true", "--timeout=180s")
    assert c.es.client.rollup.get_jobs(id="sensor-managed").body["jobs"] == []
    deletes = ops.operator_calls(c, "DELETE", "/_rollup/job/sensor-managed")
    assert deletes is None or [r["status"] for r in deletes] == [200], deletes
    c.kubectl("-n", NS, "delete", "rollupjob", "sensor-hourly", "--wait=true", "--timeout=180s")
    assert c.es.job_state("sensor-hourly") in ("started", "indexing")


def test_force_deleted_pod_mid_stop_converges_without_duplicate_calls(workload):
    c = workload
    ops.make_slow_job(c, "crash-stop", stop_delay=12)

    def force_delete(_pods):
        victim = ops.acting_pod(c)["metadata"]["name"]
        c.kubectl("-n", OP_NS, "delete", "pod", victim, "--grace-period=0", "--force", "--wait=false")

    facts = ops.disrupt_mid_stop(c, "crash-stop", force_delete)
    assert facts["after"] - facts["before"] or len(facts["after"]) == 2, facts
    ops.assert_converged_once(c, "crash-stop", facts)


def test_rollout_restart_mid_stop_converges_without_duplicate_calls(workload):
    c = workload
    ops.make_slow_job(c, "restart-stop", stop_delay=12)

    def restart(_pods):
        c.kubectl("-n", OP_NS, "rollout", "restart", "deploy/rollup-operator")

    facts = ops.disrupt_mid_stop(c, "restart-stop", restart)
    c.kubectl("-n", OP_NS, "rollout", "status", "deploy/rollup-operator", "--timeout=180s")
    now = wait_for(lambda: (lambda ps: {p["metadata"]["name"] for p in ps} if ps and all(map(ops.ready, ps)) else None)(
        ops.operator_pods(c)), 120, "the operator Pods Ready after the rollout")
    assert not (now & facts["before"]), (now, facts["before"])  # every Pod was replaced, whatever the strategy
    ops.assert_converged_once(c, "restart-stop", facts)


def test_logs_are_json_lines_without_secret_values(workload):
    c = workload
    secret = c.es.operator_password
    names = [p["metadata"]["name"] for p in ops.operator_pods(c)]
    assert names
    lines = []
    for n in names:
        lines += [ln for ln in c.kubectl("-n", OP_NS, "logs", n).stdout.splitlines() if ln.strip()]
    assert len(lines) > 5
    bad = []
    for ln in lines:
        try:
            rec = json.loads(ln)
            assert isinstance(rec, dict) and {"level", "message"} <= rec.keys()
        except (ValueError, AssertionError):
            bad.append(ln)
    assert not bad, bad[:5]
    assert not [ln for ln in lines if secret in ln]
    for what in (("-n", NS, "events"), ("-n", NS, "rollupjobs,elasticsearchconnections")):
        assert secret not in c.kubectl("get", *what, "-o", "json").stdout
    if hasattr(c, "node"):  # the figures docs/development.md quotes
        print("\n[e2e] RSS MB:", {k: round(v / 2**20) for k, v in c.node.rss().items() if v})
