"""manifests/ carry the high-availability contract (notes: ha-spec): two replicas with leader
election, RollingUpdate without unavailability, spread over nodes, a PDB and the leader-election
Role in the operator's namespace. The chart's defaults render the same (test_chart_static.py)."""

from __future__ import annotations

import shutil

import pytest

from .chart import REPO, by_key, kustomize

pytestmark = pytest.mark.skipif(shutil.which("kubectl") is None, reason="kubectl is not installed (kustomize)")
NS = "rollup-operator-system"
SELECTOR = {"matchLabels": {"app.kubernetes.io/name": "rollup-operator"}}


@pytest.fixture(scope="module")
def objs():
    return by_key(kustomize(REPO / "manifests"))


def test_deployment(objs):
    dep = objs[("Deployment", NS, "rollup-operator")]["spec"]
    assert dep["replicas"] == 2
    assert dep["strategy"] == {"type": "RollingUpdate", "rollingUpdate": {"maxSurge": 1, "maxUnavailable": 0}}
    pod = dep["template"]["spec"]
    c = pod["containers"][0]
    assert "--leader-elect" in c["args"]
    env = {e["name"]: e for e in c["env"]}
    assert env["POD_NAME"]["valueFrom"] == {"fieldRef": {"fieldPath": "metadata.name"}}
    assert env["POD_NAMESPACE"]["valueFrom"] == {"fieldRef": {"fieldPath": "metadata.namespace"}}
    assert pod["affinity"]["podAntiAffinity"]["preferredDuringSchedulingIgnoredDuringExecution"] == [
        {"weight": 100, "podAffinityTerm": {"topologyKey": "kubernetes.io/hostname", "labelSelector": SELECTOR}}]
    assert pod["topologySpreadConstraints"] == [{"maxSkew": 1, "topologyKey": "kubernetes.io/hostname",
                                                 "whenUnsatisfiable": "ScheduleAnyway", "labelSelector": SELECTOR}]
    assert dep["selector"] == SELECTOR


def test_pdb_and_leader_election_rbac(objs):
    pdb = objs[("PodDisruptionBudget", NS, "rollup-operator")]["spec"]
    assert pdb == {"minAvailable": 1, "selector": SELECTOR}
    role = objs[("Role", NS, "rollup-operator-leader-election")]
    assert role["rules"] == [{"apiGroups": ["coordination.k8s.io"], "resources": ["leases"], "verbs": ["get", "create", "update"]},
                             {"apiGroups": [""], "resources": ["events"], "verbs": ["create"]}]
    rb = objs[("RoleBinding", NS, "rollup-operator-leader-election")]
    assert rb["roleRef"] == {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": "rollup-operator-leader-election"}
    assert rb["subjects"] == [{"kind": "ServiceAccount", "name": "rollup-operator", "namespace": NS}]
    # the operator's ClusterRole is unchanged: no leases, no extra verbs
    cr = objs[("ClusterRole", "", "rollup-operator")]
    assert not [r for r in cr["rules"] if "leases" in r["resources"]]
