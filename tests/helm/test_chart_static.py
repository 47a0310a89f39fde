"""The chart with the real helm, no cluster: lint, schema, and defaults = `kubectl kustomize manifests/`."""

from __future__ import annotations

import json
import shutil
import subprocess

import pytest
import yaml

from . import sync_chart
from .chart import CHART, NAMESPACE, REPO, by_key, canonical, helm, key, kustomize, strip_chart_additions, template

needs_kubectl = pytest.mark.skipif(shutil.which("kubectl") is None, reason="kubectl is not installed (kustomize)")


def test_copies_and_values_table_are_in_sync():
    assert sync_chart.main(["--check"]) == 0, "run: python -m tests.helm.sync_chart"


def test_every_value_is_documented():
    text = (CHART / "values.yaml").read_text()
    documented = {k for k, _ in sync_chart.documented_values(text)}
    values = yaml.safe_load(text)

    def leaves(node, prefix=""):
        for k, v in node.items():
            path = f"{prefix}{k}"
            if isinstance(v, dict) and v and path not in documented:
                yield from leaves(v, path + ".")
            else:
                yield path

    missing = [p for p in leaves(values) if p not in documented]
    assert not missing, f"values without a `# --` description in values.yaml: {missing}"


def test_lint_strict(helm_bin):
    proc = helm(helm_bin, "lint", "--strict", str(CHART))
    assert "1 chart(s) linted, 0 chart(s) failed" in proc.stdout


@needs_kubectl
def test_defaults_render_what_kustomize_renders(helm_bin):
    chart = by_key(template(helm_bin))
    kust = by_key(kustomize(REPO / "manifests"))
    # Helm users create the namespace (`-n NS --create-namespace`); the chart has no Namespace object.
    namespace = kust.pop(("Namespace", "", NAMESPACE))
    assert namespace["metadata"]["labels"]["pod-security.kubernetes.io/enforce"] == "restricted"
    assert sorted(chart) == sorted(kust), "the chart and manifests/ render different objects"
    for k, want in kust.items():
        got = strip_chart_additions(chart[k])
        if k[0] == "CustomResourceDefinition":  # manifests/crds/ carry no labels; the chart labels them all
            assert got["metadata"].pop("labels") == {"app.kubernetes.io/name": "rollup-operator"}
        assert canonical(got) == canonical(want), f"{k} differs from manifests/"
    # ... and the chart's additions are exactly its labels (and the keep policy on CRDs)
    for (kind, _, name), obj in chart.items():
        assert obj["metadata"]["labels"]["app.kubernetes.io/managed-by"] == "Helm"
        if kind == "CustomResourceDefinition":
            assert obj["metadata"]["annotations"] == {"helm.sh/resource-policy": "keep"}


@needs_kubectl
def test_opt_in_monitoring_renders_what_manifests_monitoring_renders(helm_bin):
    chart = by_key(template(helm_bin, "--set", "serviceMonitor.enabled=true", "--set", "prometheusRule.enabled=true",
                            "--set", "grafanaDashboard.enabled=true"))
    kust = by_key(kustomize(REPO / "manifests" / "monitoring"))
    for k, want in kust.items():
        assert k in chart, f"the chart does not render {k}"
        got = strip_chart_additions(chart[k])
        if k[0] == "ConfigMap":  # the dashboard: the same JSON document
            assert json.loads(got["data"]["rollup-operator.json"]) == json.loads(want["data"]["rollup-operator.json"])
            got, want = {**got, "data": None}, {**want, "data": None}
        assert canonical(got) == canonical(want), f"{k} differs from manifests/monitoring/"
    assert ("ServiceMonitor", NAMESPACE, "rollup-operator") not in by_key(template(helm_bin))


def deployment(objs: list[dict]) -> dict:
    return next(o for o in objs if o["kind"] == "Deployment")


def container(objs: list[dict]) -> dict:
    return deployment(objs)["spec"]["template"]["spec"]["containers"][0]


def test_values_reach_the_objects(helm_bin):
    objs = template(helm_bin, "--set", "image.tag=9.9.9", "--set", "operator.watchNamespaces={a,b}",
                    "--set", "operator.logLevel=DEBUG", "--set", "operator.pollInterval=0.5",
                    "--set", "operator.extraArgs={--kube-writers=4}", "--set", "replicas=1",
                    "--set", "leaderElection.enabled=false", "--set", "priorityClassName=high",
                    "--set", "nodeSelector.disk=ssd", "--set", "podLabels.team=search",
                    "--set", "imagePullSecrets[0].name=regcred", "--set", "resources.limits.memory=1Gi")
    c = container(objs)
    assert c["image"] == "ghcr.io/esops/rollup-operator:9.9.9"
    assert c["args"] == ["run", "--namespace=a", "--namespace=b", "--liveness-endpoint=http://0.0.0.0:8080/healthz",
                         "--http-port=9090", "--log-format=json", "--log-level=DEBUG", "--poll-interval=0.5",
                         "--kube-writers=4"]
    assert c["resources"]["limits"]["memory"] == "1Gi"
    pod = deployment(objs)["spec"]["template"]["spec"]
    assert deployment(objs)["spec"]["replicas"] == 1
    assert pod["priorityClassName"] == "high" and pod["nodeSelector"] == {"disk": "ssd"}
    assert pod["imagePullSecrets"] == [{"name": "regcred"}]
    assert deployment(objs)["spec"]["template"]["metadata"]["labels"]["team"] == "search"
    assert not [o for o in objs if o["kind"] in ("Role", "RoleBinding")], "no leader-election RBAC without leader election"


def test_image_digest_and_app_version(helm_bin):
    digest = "sha256:" + "a" * 64
    assert container(template(helm_bin, "--set", f"image.digest={digest}"))["image"] == f"ghcr.io/esops/rollup-operator@{digest}"
    app_version = yaml.safe_load((CHART / "Chart.yaml").read_text())["appVersion"]
    assert container(template(helm_bin))["image"].endswith(f":{app_version}")


def test_crds_switches_and_existing_service_account(helm_bin):
    kinds = [o["kind"] for o in template(helm_bin, "--set", "crds.install=false")]
    assert "CustomResourceDefinition" not in kinds
    crds = [o for o in template(helm_bin, "--set", "crds.keep=false") if o["kind"] == "CustomResourceDefinition"]
    assert len(crds) == 3 and all("annotations" not in c["metadata"] for c in crds)
    objs = template(helm_bin, "--set", "serviceAccount.create=false", "--set", "serviceAccount.name=ops")
    assert "ServiceAccount" not in [o["kind"] for o in objs]
    assert deployment(objs)["spec"]["template"]["spec"]["serviceAccountName"] == "ops"
    crb = next(o for o in objs if o["kind"] == "ClusterRoleBinding")
    assert crb["subjects"] == [{"kind": "ServiceAccount", "name": "ops", "namespace": NAMESPACE}]


def test_affinity_and_spread_can_be_replaced(helm_bin):
    values = {"affinity": {"nodeAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": {"nodeSelectorTerms": [
        {"matchExpressions": [{"key": "pool", "operator": "In", "values": ["ops"]}]}]}}},
        "topologySpreadConstraints": [{"maxSkew": 2, "topologyKey": "zone", "whenUnsatisfiable": "DoNotSchedule"}]}
    pod = deployment(template(helm_bin, "--set-json", f"affinity={json.dumps(values['affinity'])}",
                              "--set-json", f"topologySpreadConstraints={json.dumps(values['topologySpreadConstraints'])}"))
    spec = pod["spec"]["template"]["spec"]
    assert spec["affinity"] == values["affinity"]
    assert spec["topologySpreadConstraints"] == values["topologySpreadConstraints"]


BAD_VALUES = [
    (["--set", "replicas=-1"], "/replicas': minimum: got -1, want 0"),
    (["--set", "replicas=two"], "/replicas': got string, want integer"),
    (["--set", "operator.logFormat=xml"], "/operator/logFormat': value must be one of 'json', 'text'"),
    (["--set", "operator.logLevel=LOUD"], "/operator/logLevel': value must be one of"),
    (["--set", "operator.pollInterval=0"], "/operator/pollInterval"),
    (["--set", "operator.extraArgs={kube-writers=4}"], "/operator/extraArgs/0': 'kube-writers=4' does not match pattern"),
    (["--set", "operator.watchNamespaces={Not_A_Namespace}"], "/operator/watchNamespaces/0"),
    (["--set", "image.digest=latest"], "/image/digest': 'latest' does not match pattern"),
    (["--set", "image.pullPolicy=Sometimes"], "/image/pullPolicy': value must be one of 'Always', 'IfNotPresent', 'Never'"),
    (["--set", "replicas=3", "--set", "leaderElection.enabled=false"], "/leaderElection/enabled': value must be true"),
    (["--set", "serviceMonitor.interval=often"], "/serviceMonitor/interval"),
    (["--set", "metrics.port=70000"], "/metrics/port': maximum: got 70,000, want 65,535"),
    (["--set", "replica=2"], "additional properties 'replica' not allowed"),
    (["--set", "crds.install=maybe"], "/crds/install': got string, want boolean"),
]


@pytest.mark.parametrize("args,message", BAD_VALUES, ids=[" ".join(a) for a, _ in BAD_VALUES])
def test_schema_rejects_bad_values(helm_bin, args, message):
    proc = helm(helm_bin, "template", "r", str(CHART), *args, check=False)
    assert proc.returncode != 0, f"helm accepted {args}"
    assert "values don't meet the specifications of the schema" in proc.stderr
    assert message in proc.stderr, proc.stderr


def test_service_monitor_needs_the_service(helm_bin):
    proc = helm(helm_bin, "template", "r", str(CHART), "--set", "serviceMonitor.enabled=true",
                "--set", "metrics.service.enabled=false", check=False)
    assert proc.returncode != 0 and "serviceMonitor.enabled needs metrics.service.enabled" in proc.stderr


def test_lint_strict_with_everything_enabled(helm_bin):
    proc = helm(helm_bin, "lint", "--strict", str(CHART), "--set", "serviceMonitor.enabled=true",
                "--set", "prometheusRule.enabled=true", "--set", "grafanaDashboard.enabled=true",
                "--set", "operator.watchNamespaces={a}", "--set", "image.digest=sha256:" + "b" * 64)
    assert "0 chart(s) failed" in proc.stdout


def test_packaged_chart_renders_the_same(helm_bin, tmp_path):
    helm(helm_bin, "package", str(CHART), "--destination", str(tmp_path))
    (tgz,) = tmp_path.glob("rollup-operator-*.tgz")
    args = ["--set", "prometheusRule.enabled=true", "--set", "grafanaDashboard.enabled=true"]
    assert template(helm_bin, *args, chart=tgz) == template(helm_bin, *args)
