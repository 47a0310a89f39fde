"""Top-level pytest fixtures: a real kube-apiserver + etcd for the whole session.

Fixtures (all session-scoped except where noted):

* ``apiserver``            -> devtools.harness.apiserver.APIServer, started (built on first use).
                              Skips the test if ROLLUP_NO_APISERVER=1 or Go is not installed.
* ``admin_kubeconfig``     -> str path (user ``admin``, group system:masters)
* ``operator_kubeconfig``  -> str path (identity of the operator's ServiceAccount
                              ``system:serviceaccount:rollup-operator-system:rollup-operator``)
* ``user_kubeconfig``      -> str path (user ``tester``, no grants)
* ``kube_admin``           -> kubernetes.client.ApiClient for the admin kubeconfig
* ``kubectl``              -> function ``kubectl(*args, check=True, kubeconfig=None, input=None,
                              timeout=120) -> subprocess.CompletedProcess`` running /usr/bin/kubectl
                              with the admin kubeconfig (cwd = repo root), raising with stderr on
                              failure unless check=False

Operator-specific fixtures belong in tests/integration/conftest.py.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parent.parent
if str(REPO_ROOT) not in sys.path:  # so `devtools.harness` imports however pytest was started
    sys.path.insert(0, str(REPO_ROOT))

from devtools.harness.gobuild import GoToolchainMissing, find_go  # noqa: E402


def _progress_for(config):
    """Print around pytest's output capture (fd-level), so build progress shows live."""
    capman = config.pluginmanager.getplugin("capturemanager")

    def progress(msg: str) -> None:
        if capman is not None:
            with capman.global_and_fixture_disabled():
                sys.stderr.write(msg + "\n")
                sys.stderr.flush()
        else:
            sys.stderr.write(msg + "\n")

    return progress


@pytest.fixture(scope="session")
def apiserver(pytestconfig):
    """A running kube-apiserver (+ etcd) shared by the whole session; stopped at the end."""
    _progress = _progress_for(pytestconfig)
    if os.environ.get("ROLLUP_NO_APISERVER") == "1":
        pytest.skip("real kube-apiserver disabled by ROLLUP_NO_APISERVER=1")
    if not find_go():
        pytest.skip("the Go toolchain is not installed: cannot build the kube-apiserver harness "
                    "(install Go, or set ROLLUP_NO_APISERVER=1 to skip explicitly)")
    from devtools.harness.apiserver import APIServer, ensure_built

    try:
        binary = ensure_built(progress=_progress)
    except GoToolchainMissing as e:  # pragma: no cover - find_go said yes
        pytest.skip(str(e))
    server = APIServer(binary=binary, progress=_progress)
    server.start()
    _progress(f"[harness] kube-apiserver ready at {server.url} in {server.start_seconds:.1f}s "
              f"(data {server.data_dir})")
    try:
        yield server
    finally:
        rss = server.rss_bytes()
        if rss:
            _progress(f"[harness] kube-apiserver+etcd RSS at session end: {rss / 2**20:.0f} MiB")
        server.stop()


@pytest.fixture(scope="session")
def admin_kubeconfig(apiserver) -> str:
    return apiserver.admin_kubeconfig


@pytest.fixture(scope="session")
def operator_kubeconfig(apiserver) -> str:
    return apiserver.operator_kubeconfig


@pytest.fixture(scope="session")
def user_kubeconfig(apiserver) -> str:
    return apiserver.user_kubeconfig


@pytest.fixture(scope="session")
def kube_admin(admin_kubeconfig):
    """kubernetes.client.ApiClient authenticated as cluster admin."""
    from devtools.harness.apiserver import api_client

    api = api_client(admin_kubeconfig)
    try:
        yield api
    finally:
        api.close()


KUBECTL = shutil.which("kubectl") or "/usr/bin/kubectl"


@pytest.fixture(scope="session")
def kubectl(admin_kubeconfig):
    """``kubectl("apply", "-k", "manifests/")`` as admin; see the module docstring."""

    def run(*args: str, check: bool = True, kubeconfig: str | None = None, input: str | None = None,
            timeout: float = 120) -> subprocess.CompletedProcess:
        cmd = [KUBECTL, "--kubeconfig", kubeconfig or admin_kubeconfig, *map(str, args)]
        proc = subprocess.run(cmd, cwd=REPO_ROOT, capture_output=True, text=True, input=input, timeout=timeout)
        if check and proc.returncode != 0:
            raise RuntimeError(
                f"kubectl {' '.join(map(str, args))} failed (exit {proc.returncode}):\n{proc.stderr.strip()}"
            )
        return proc

    return run


@pytest.fixture(scope="session")
def opensearch_node(pytestconfig):
    """A real OpenSearch 2.19.4 node with the rollup plugins (devtools/harness/opensearch.py), shared by
    the session. Skips only outside CI when Java or Maven is missing; in CI (CI=true) a node that
    cannot be built or started fails the test."""
    from devtools.harness.opensearch import OpenSearchNode, OpenSearchToolchainMissing, toolchain

    progress = _progress_for(pytestconfig)
    try:
        toolchain()
    except OpenSearchToolchainMissing as e:
        if os.environ.get("CI", "").lower() in ("1", "true", "yes"):
            pytest.fail(f"CI must run the tests on the real OpenSearch node: {e}", pytrace=False)
        pytest.skip(str(e))
    node = OpenSearchNode(progress=progress).start()
    progress(f"[harness] OpenSearch node at {node.url} in {node.start_seconds:.1f}s (dir {node.dir})")
    try:
        yield node
    finally:
        rss = node.rss_bytes()
        if rss:
            progress(f"[harness] OpenSearch JVM RSS at session end: {rss / 2**20:.0f} MiB")
        node.stop()
