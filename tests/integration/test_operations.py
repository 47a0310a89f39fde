"""Operating it: GitOps health (kstatus on real statuses), metrics, JSON logs, RBAC that is exactly enough."""

import json
import time

import pytest
from kubernetes import client

from devtools.harness import kstatus

from .support import OperatorProcess, condition


def connect(cluster, emu, **spec):
    spec.setdefault("syncInterval", "2s")
    cluster.connection("es", emu.url, **spec)


def test_kstatus_reads_the_statuses_the_operator_writes(cluster, emulator, operator):
    """Flux's verdict (kstatus, the Go reference implementation) on statuses written by the operator."""
    emu = emulator(auto_trigger=False)
    emu.add_job("done", state="stopped")
    emu.add_job("busy", state="started", stop_delay=30, pages_per_run=None, page_duration=60)
    emu.trigger("busy")
    connect(cluster, emu)
    cluster.job("done", "stopped")
    cluster.job("busy", "stopped", stop={"timeout": "1s"})
    cluster.job("lost", "stopped")  # no such job: Stalled
    operator()
    done = cluster.wait_ready("done")
    busy = cluster.wait("busy", lambda o: (o.get("status") or {}).get("stopAttempts", 0) >= 2, timeout=20, what="stop retries")
    lost = cluster.wait_reason("lost", "JobNotFound")
    verdicts = {r["name"]: r["status"] for r in kstatus.compute([done, busy, lost])}
    assert verdicts == {"done": "Current", "busy": "InProgress", "lost": "Failed"}, verdicts
    # a spec change not yet observed is InProgress whatever the old status said
    changed = cluster.set_desired("done", "started")
    if changed["status"]["observedGeneration"] != changed["metadata"]["generation"]:
        assert kstatus.compute_one(changed)["status"] == "InProgress"
    assert kstatus.compute_one(cluster.wait_ready("done"))["status"] == "Current"
    conn = cluster.wait("es", lambda o: condition(o, "Ready").get("status") == "True", plural="elasticsearchconnections")
    assert kstatus.compute_one(conn)["status"] == "Current"


def test_metrics_endpoint_reports_the_work(cluster, emulator, operator):
    emu = emulator(auto_trigger=False)
    emu.add_job("m1", state="started")
    connect(cluster, emu)
    cluster.job("m1", "stopped")
    cluster.job("m1-dup", "stopped", jobId="m1")  # younger (or same second, later name): DuplicateJob, in its desired state
    cluster.job("m-missing", "stopped")  # no such job: JobNotFound
    op = operator()
    cluster.wait_ready("m1")
    cluster.wait_reason("m1-dup", "DuplicateJob")
    cluster.wait("m1-dup", lambda o: o["status"].get("jobState") == "stopped", what="the owner's stop seen")  # in its desired state
    cluster.wait_reason("m-missing", "JobNotFound")
    text = op.metrics()
    assert 'rollup_operator_jobs{desired="stopped",state="stopped"} 2.0' in text  # the duplicate looks converged here
    assert 'rollup_operator_jobs{desired="stopped",state="absent"} 1.0' in text
    # ... and is Stalled here, with its reason
    assert 'rollup_operator_job_conditions{reason="DuplicateJob",status="True",type="Stalled"} 1.0' in text
    assert 'rollup_operator_job_conditions{reason="JobNotFound",status="True",type="Stalled"} 1.0' in text
    assert 'rollup_operator_job_conditions{reason="Stopped",status="True",type="Ready"} 1.0' in text
    assert 'rollup_operator_job_conditions{reason="Stopped",status="False",type="Stalled"} 1.0' in text
    assert 'rollup_operator_connection_conditions{reason="Connected",status="True",type="Ready"} 1.0' in text
    assert 'rollup_operator_elasticsearch_request_duration_seconds_count{api="stop",status="200"} 1.0' in text
    assert 'rollup_operator_reconcile_passes_total{result="Ready"}' in text
    assert 'rollup_operator_kubernetes_writes_total{kind="status"}' in text
    assert f'rollup_operator_connection_up{{connection="es",namespace="{cluster.ns}"}} 1.0' in text
    assert "rollup_operator_stop_duration_seconds_count 1.0" in text


def test_json_logs_name_job_namespace_and_connection(cluster, emulator, operator):
    emu = emulator(auto_trigger=False)
    emu.add_job("lj", state="started")
    connect(cluster, emu)
    cluster.job("lj", "stopped")
    op = operator("--log-format", "json", "--log-level", "INFO")
    cluster.wait_ready("lj")
    lines = [json.loads(l) for l in op.logs().splitlines() if l.startswith("{")]
    assert lines, op.logs()[:2000]
    about_job = [l for l in lines if l.get("job") == "lj"]
    assert about_job and all(l["namespace"] == cluster.ns and l["connection"] == "es" for l in about_job)
    assert all({"time", "level", "logger", "message"} <= set(l) for l in lines)


def test_missing_rbac_verb_fails_loudly(cluster, emulator, apiserver, kube_admin, kubectl):
    """The operator as a user whose role lacks 'patch' on rollupjobs/status: it says so, it does not pretend."""
    emu = emulator(auto_trigger=False)
    emu.add_job("r1", state="started")
    connect(cluster, emu)
    cluster.job("r1", "stopped")
    rbac = client.RbacAuthorizationV1Api(kube_admin)
    role = client.V1ClusterRole(
        metadata=client.V1ObjectMeta(name=f"partial-{cluster.ns}"),
        rules=[
            client.V1PolicyRule(api_groups=["rollup.esops.dev"], resources=["rollupjobs", "elasticsearchconnections"], verbs=["get", "list", "watch"]),
            client.V1PolicyRule(api_groups=["rollup.esops.dev"], resources=["elasticsearchconnections/status"], verbs=["get", "patch"]),
            client.V1PolicyRule(api_groups=[""], resources=["events"], verbs=["create"]),
        ])
    rbac.create_cluster_role(role)
    rbac.create_cluster_role_binding(client.V1ClusterRoleBinding(
        metadata=client.V1ObjectMeta(name=f"partial-{cluster.ns}"),
        role_ref=client.V1RoleRef(api_group="rbac.authorization.k8s.io", kind="ClusterRole", name=f"partial-{cluster.ns}"),
        subjects=[client.RbacV1Subject(kind="User", name="tester", api_group="rbac.authorization.k8s.io")]))
    op = OperatorProcess(apiserver.user_kubeconfig, [cluster.ns]).start()
    try:
        deadline = time.monotonic() + 20
        while "RBAC denies the operator" not in op.logs() and time.monotonic() < deadline:
            time.sleep(0.2)
        logs = op.logs()
        # It names the object and what was refused (the API server's own words: verb and resource).
        assert "RBAC denies the operator" in logs and f"RollupJob {cluster.ns}/r1" in logs, logs[-3000:]
        assert 'cannot patch resource "rollupjobs/status"' in logs and "forbidden" in logs.lower(), logs[-3000:]
        assert op.alive()
        assert "status" not in cluster.get("r1")  # nothing was written, and nothing claims otherwise
    finally:
        op.stop()
        rbac.delete_cluster_role_binding(f"partial-{cluster.ns}")
        rbac.delete_cluster_role(f"partial-{cluster.ns}")


def test_manifests_rbac_is_exactly_what_the_operator_uses(kubectl, installed):
    """The ClusterRole grants only the verbs docs/operations.md lists; nothing cluster-wide beyond them."""
    role = json.loads(kubectl("get", "clusterrole", "rollup-operator", "-o", "json").stdout)
    granted = {(g, r, v) for rule in role["rules"] for g in rule["apiGroups"] for r in rule["resources"] for v in rule["verbs"]}
    expected = {("rollup.esops.dev", "rollupjobs", v) for v in ("get", "list", "watch", "patch", "delete")}
    expected |= {("rollup.esops.dev", "rollupmigrations", v) for v in ("get", "list", "watch", "patch")}
    expected |= {("rollup.esops.dev", "elasticsearchconnections", v) for v in ("get", "list", "watch")}
    expected |= {("rollup.esops.dev", r, v) for r in ("rollupjobs/status", "elasticsearchconnections/status", "rollupmigrations/status")
                 for v in ("get", "patch")}
    expected |= {("", "secrets", "get"), ("", "events", "create"), ("", "events", "patch")}
    assert granted == expected
