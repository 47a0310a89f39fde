"""Fixtures for tests that run the real operator process against the real API server and the emulator.

* ``installed``   (session) manifests/ applied with ``kubectl apply -k`` as a user would; the
                  operator then runs with exactly the RBAC those manifests grant.
* ``cluster``     a fresh namespace, as a :class:`support.Cluster`.
* ``emulator``    factory: ``emulator(version="8.17.0", **kw)`` -> a running EmulatorThread.
* ``operator``    factory: ``operator(*extra_args)`` -> a started :class:`support.OperatorProcess`
                  watching the test's namespace; its log is printed when the test fails.
"""

from __future__ import annotations

import uuid

import pytest
from kubernetes import client

from .support import Cluster, OperatorProcess, REPO_ROOT

pytestmark = pytest.mark.apiserver


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    rep = outcome.get_result()
    setattr(item, f"rep_{rep.when}", rep)


@pytest.fixture(scope="session")
def installed(apiserver, kubectl):
    kubectl("apply", "--server-side", "-k", str(REPO_ROOT / "manifests"))
    kubectl("wait", "--for=condition=Established", "crd/rollupjobs.rollup.esops.dev",
            "crd/elasticsearchconnections.rollup.esops.dev", "--timeout=60s")
    return True


@pytest.fixture
def cluster(installed, kube_admin, request):
    name = f"t-{request.node.name[:40].lower().replace('_', '-').strip('-')}-{uuid.uuid4().hex[:5]}"
    name = "".join(ch if ch.isalnum() or ch == "-" else "-" for ch in name).strip("-")
    client.CoreV1Api(kube_admin).create_namespace(client.V1Namespace(metadata=client.V1ObjectMeta(name=name)))
    return Cluster(kube_admin, name)


@pytest.fixture
def emulator():
    from es_rollup_emulator import EmulatorThread

    started = []

    def make(version: str = "8.17.0", **kw):
        emu = EmulatorThread(version=version, **kw)
        emu.start()
        started.append(emu)
        return emu

    yield make
    for emu in started:
        emu.close()


@pytest.fixture
def operator(operator_kubeconfig, cluster, request):
    procs: list[OperatorProcess] = []

    def start(*extra: str, namespaces: list[str] | None = None, wait_ready: bool = True, kubeconfig: str | None = None):
        p = OperatorProcess(kubeconfig or operator_kubeconfig, namespaces or [cluster.ns], list(extra))
        procs.append(p)
        return p.start(wait_ready=wait_ready)

    yield start
    failed = getattr(request.node, "rep_call", None) is not None and request.node.rep_call.failed
    for p in procs:
        p.stop()
        if failed:
            print(f"\n----- operator log ({p.log_file}) -----\n{p.logs()[-15000:]}")
