"""helm install / upgrade / uninstall of the chart against the real kube-apiserver, with the
operator working after each step.

The harness has no kubelet, so the Deployment's pods never run: after each step the operator runs
as a process (as in tests/integration) with the ServiceAccount identity the chart's RBAC binds and
the arguments of the Deployment the API server now holds -- minus ``--leader-elect`` (whose code is
on another branch; see the report), the probe/metrics ports (the process picks free ones) and
``run``. It must then converge a RollupJob against the emulator.
"""

from __future__ import annotations

import os
import shutil
import time
from pathlib import Path

import pytest
import yaml
from kubernetes import client

from tests.integration.support import Cluster, OperatorProcess

from .chart import CHART, NAMESPACE, RELEASE, helm

pytestmark = [pytest.mark.apiserver, pytest.mark.slow]
CRD_RJ = "rollupjobs.rollup.esops.dev"


@pytest.fixture(scope="module")
def api():
    """An API server of its own: helm owns the CRDs and cluster roles here, not kubectl."""
    if os.environ.get("ROLLUP_NO_APISERVER") == "1":
        pytest.skip("real kube-apiserver disabled by ROLLUP_NO_APISERVER=1")
    from devtools.harness.gobuild import find_go

    if not find_go():
        pytest.skip("the Go toolchain is not installed: cannot build the kube-apiserver harness")
    from devtools.harness.apiserver import APIServer, api_client, ensure_built

    with APIServer(binary=ensure_built(progress=None), progress=None) as server:
        admin = api_client(server.admin_kubeconfig)
        try:
            yield server, admin
        finally:
            admin.close()


def deployed_args(admin) -> list[str]:
    dep = client.AppsV1Api(admin).read_namespaced_deployment(RELEASE, NAMESPACE)
    return dep.spec.template.spec.containers[0].args


def operator_args(args: list[str]) -> list[str]:
    assert args[0] == "run"
    return [a for a in args[1:] if a != "--leader-elect"
            and not a.startswith(("--liveness-endpoint", "--http-port", "--http-host"))]


def run_operator(server, admin) -> OperatorProcess:
    return OperatorProcess(server.operator_kubeconfig, [], operator_args(deployed_args(admin))).start()


def crd(admin, name: str) -> dict:
    return client.ApiextensionsV1Api(admin).read_custom_resource_definition(name).to_dict()


def wait_established(admin, name: str, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        conds = crd(admin, name)["status"].get("conditions") or []
        if any(c["type"] == "Established" and c["status"] == "True" for c in conds):
            return
        time.sleep(0.2)
    raise AssertionError(f"{name} not Established after {timeout}s")


def chart_copy(dest: Path) -> Path:
    """A copy of the chart, as it is (kubeVersion included: the harness's kube-apiserver carries
    its real version stamp), that the upgrade step can change."""
    shutil.copytree(CHART, dest)
    return dest


def test_install_upgrade_uninstall_reinstall(api, helm_bin, tmp_path):
    from es_rollup_emulator import EmulatorThread

    server, admin = api
    base = chart_copy(tmp_path / "base" / "rollup-operator")
    kc = server.admin_kubeconfig
    emu = EmulatorThread(version="8.17.0", auto_trigger=False)
    emu.start()
    op = None
    try:
        emu.add_job("sensor-hourly", state="started")

        # --- install (defaults) -----------------------------------------------------------------
        helm(helm_bin, "install", RELEASE, str(base), "-n", NAMESPACE, "--create-namespace", kubeconfig=kc)
        status = yaml.safe_load(helm(helm_bin, "status", RELEASE, "-n", NAMESPACE, "-o", "yaml", kubeconfig=kc).stdout)
        assert status["info"]["status"] == "deployed" and status["version"] == 1
        wait_established(admin, CRD_RJ)
        assert crd(admin, CRD_RJ)["metadata"]["annotations"]["helm.sh/resource-policy"] == "keep"
        args = deployed_args(admin)
        assert "--leader-elect" in args and "--all-namespaces" in args
        rbac = client.RbacAuthorizationV1Api(admin)
        assert rbac.read_namespaced_role("rollup-operator-leader-election", NAMESPACE).rules[0].resources == ["leases"]
        assert client.PolicyV1Api(admin).read_namespaced_pod_disruption_budget(RELEASE, NAMESPACE).spec.min_available == 1
        rbac.read_cluster_role("rollup-operator-viewer")
        rbac.read_cluster_role("rollup-operator-editor")

        client.CoreV1Api(admin).create_namespace(client.V1Namespace(metadata=client.V1ObjectMeta(name="apps")))
        apps = Cluster(admin, "apps")
        apps.connection("es", emu.url, syncInterval="1s")
        apps.job("sensor-hourly", "stopped")
        op = run_operator(server, admin)
        apps.wait_ready("sensor-hourly", timeout=30)
        assert emu.job_state("sensor-hourly") == "stopped"
        op.stop()

        # --- upgrade: a flag and the CRDs change ----------------------------------------------------
        chart = chart_copy(tmp_path / "changed" / "rollup-operator")
        rj = chart / "files" / "crds" / "rollup.esops.dev_rollupjobs.yaml"
        doc = yaml.safe_load(rj.read_text())
        doc["spec"]["names"]["shortNames"].append("rjob")
        rj.write_text(yaml.safe_dump(doc, sort_keys=False))
        helm(helm_bin, "upgrade", RELEASE, str(chart), "-n", NAMESPACE, "--reuse-values",
             "--set", "operator.logLevel=DEBUG", "--set", "operator.pollInterval=0.5", kubeconfig=kc)
        status = yaml.safe_load(helm(helm_bin, "status", RELEASE, "-n", NAMESPACE, "-o", "yaml", kubeconfig=kc).stdout)
        assert status["info"]["status"] == "deployed" and status["version"] == 2
        assert "rjob" in crd(admin, CRD_RJ)["spec"]["names"]["short_names"], "helm upgrade did not update the CRD"
        wait_established(admin, CRD_RJ)
        args = deployed_args(admin)
        assert "--log-level=DEBUG" in args and "--poll-interval=0.5" in args
        assert apps.get("sensor-hourly")["spec"]["desiredState"] == "stopped", "the RollupJob did not survive"
        op = run_operator(server, admin)
        apps.set_desired("sensor-hourly", "started")
        apps.wait_ready("sensor-hourly", timeout=30)
        assert emu.job_state("sensor-hourly") in ("started", "indexing")
        op.stop()

        # --- uninstall: the operator goes, the CRDs and RollupJobs stay -------------------------------
        helm(helm_bin, "uninstall", RELEASE, "-n", NAMESPACE, kubeconfig=kc)
        assert helm(helm_bin, "status", RELEASE, "-n", NAMESPACE, kubeconfig=kc, check=False).returncode != 0
        with pytest.raises(client.ApiException) as gone:
            client.AppsV1Api(admin).read_namespaced_deployment(RELEASE, NAMESPACE)
        assert gone.value.status == 404
        with pytest.raises(client.ApiException) as gone:
            rbac.read_cluster_role(RELEASE)
        assert gone.value.status == 404
        crd(admin, CRD_RJ)  # kept
        assert apps.get("sensor-hourly")["spec"]["desiredState"] == "started"

        # --- install again: adopts the kept CRDs, the operator picks the job up again -------------------
        helm(helm_bin, "install", RELEASE, str(base), "-n", NAMESPACE, kubeconfig=kc)
        assert "rjob" not in crd(admin, CRD_RJ)["spec"]["names"]["short_names"]  # back to this chart's CRD
        op = run_operator(server, admin)
        apps.set_desired("sensor-hourly", "stopped")
        apps.wait_ready("sensor-hourly", timeout=30)
        assert emu.job_state("sensor-hourly") == "stopped"
    except BaseException:
        if op is not None:
            print(f"----- operator log -----\n{op.logs()[-8000:]}")
        raise
    finally:
        if op is not None:
            op.stop()
        emu.close()
