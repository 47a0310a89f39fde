"""The user roles of manifests/user-roles.yaml on the real kube-apiserver, aggregated into the
built-in view / edit / admin roles by Kubernetes' own aggregation controller (devtools/go/rbacagg,
since the harness runs no kube-controller-manager). Users are impersonated by the admin, so every
answer is the API server's own authorization decision."""

from __future__ import annotations

import os
import subprocess
import time

import pytest
import yaml

from devtools.harness.gotools import build_or_skip

pytestmark = pytest.mark.apiserver

NS = "team-a"
JOB = """apiVersion: rollup.esops.dev/v1alpha1
kind: RollupJob
metadata: {name: %s, namespace: team-a}
spec: {connectionRef: {name: es}, desiredState: stopped}
"""


@pytest.fixture(scope="module")
def aggregated(apiserver, kubectl):
    """manifests/ installed, users bound to view / edit / admin in NS, aggregation done."""
    binary = build_or_skip("rbacagg")
    kubectl("apply", "--server-side", "-k", "manifests/")
    kubectl("wait", "--for=condition=Established", "crd/rollupjobs.rollup.esops.dev", "--timeout=60s")
    kubectl("create", "namespace", NS, check=False)
    for user, role in (("viona", "view"), ("eddie", "edit"), ("ada", "admin")):
        kubectl("create", "rolebinding", f"{user}-{role}", "-n", NS, f"--clusterrole={role}", f"--user={user}", check=False)
    proc = subprocess.Popen([str(binary), "--kubeconfig", apiserver.admin_kubeconfig],
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        deadline = time.monotonic() + 60
        while True:
            roles = {r: yaml.safe_load(kubectl("get", "clusterrole", r, "-o", "yaml").stdout) for r in ("view", "edit", "admin")}
            if all(any("rollupjobs" in (rule.get("resources") or []) for rule in roles[r].get("rules") or []) for r in roles):
                break
            assert time.monotonic() < deadline, "view/edit/admin did not aggregate the rollup-operator roles in 60 s"
            time.sleep(0.3)
        yield roles
    finally:
        proc.terminate()
        proc.wait(timeout=10)


def can(kubectl, user: str, verb: str, resource: str, ns: str = NS, subresource: str | None = None) -> bool:
    extra = [f"--subresource={subresource}"] if subresource else []
    out = kubectl("auth", "can-i", verb, resource, *extra, "-n", ns, f"--as={user}", check=False).stdout.strip()
    return out == "yes"


def as_user(kubectl, user: str, *args: str, input: str | None = None):
    return kubectl(*args, f"--as={user}", "-n", NS, check=False, input=input)


def test_roles_aggregate_into_the_builtin_roles(aggregated):
    def verbs(role):
        return {v for rule in aggregated[role]["rules"] if "rollupjobs" in (rule.get("resources") or []) for v in rule["verbs"]}

    assert verbs("view") == {"get", "list", "watch"}
    assert {"create", "update", "patch", "delete"} <= verbs("edit")
    assert {"create", "update", "patch", "delete"} <= verbs("admin")


def test_view_can_read_but_not_change(aggregated, kubectl):
    kubectl("apply", "-f", "-", input=JOB % "from-admin")
    got = as_user(kubectl, "viona", "get", "rollupjobs", "-o", "name")
    assert got.returncode == 0 and "rollupjob.rollup.esops.dev/from-admin" in got.stdout
    assert as_user(kubectl, "viona", "get", "elasticsearchconnections").returncode == 0
    denied = as_user(kubectl, "viona", "apply", "-f", "-", input=JOB % "from-viewer")
    assert denied.returncode != 0 and "forbidden" in denied.stderr.lower()
    denied = as_user(kubectl, "viona", "delete", "rollupjob", "from-admin")
    assert denied.returncode != 0 and "forbidden" in denied.stderr.lower()
    assert not can(kubectl, "viona", "patch", "rollupjobs")
    assert can(kubectl, "viona", "watch", "rollupjobs")
    assert not can(kubectl, "viona", "get", "rollupjobs", ns="default"), "view in team-a leaks to another namespace"


@pytest.mark.parametrize("user", ["eddie", "ada"])
def test_edit_and_admin_can_change(aggregated, kubectl, user):
    name = f"from-{user}"
    made = as_user(kubectl, user, "apply", "-f", "-", input=JOB % name)
    assert made.returncode == 0, made.stderr
    patched = as_user(kubectl, user, "patch", "rollupjob", name, "--type", "merge", "-p", '{"spec":{"desiredState":"started"}}')
    assert patched.returncode == 0, patched.stderr
    for verb in ("create", "update", "patch", "delete"):
        assert can(kubectl, user, verb, "elasticsearchconnections")
    assert not can(kubectl, user, "patch", "rollupjobs", subresource="status"), "users must not write the operator's status"
    deleted = as_user(kubectl, user, "delete", "rollupjob", name)
    assert deleted.returncode == 0, deleted.stderr


def test_the_roles_give_no_secrets(aggregated, kubectl):
    for role in ("rollup-operator-viewer", "rollup-operator-editor"):
        rules = yaml.safe_load(kubectl("get", "clusterrole", role, "-o", "yaml").stdout)["rules"]
        assert all(rule["apiGroups"] == ["rollup.esops.dev"] for rule in rules), role
        assert all("secrets" not in rule["resources"] for rule in rules), role
    # bound to them alone (no built-in role), nobody can read the operator's Secrets
    kubectl("create", "rolebinding", "only-editor", "-n", "rollup-operator-system", "--clusterrole=rollup-operator-editor",
            "--user=olga", check=False)
    kubectl("create", "rolebinding", "only-viewer", "-n", NS, "--clusterrole=rollup-operator-viewer", "--user=olga", check=False)
    assert can(kubectl, "olga", "create", "rollupjobs", ns="rollup-operator-system")
    for ns in ("rollup-operator-system", NS):
        for verb in ("get", "list", "watch"):
            assert not can(kubectl, "olga", verb, "secrets", ns=ns)
    # and the viewer, through `view`, cannot read Secrets either (view never includes them)
    assert not can(kubectl, "viona", "get", "secrets")
