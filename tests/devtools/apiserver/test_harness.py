"""The kube-apiserver harness is a real API server: TLS, token auth, RBAC, etcd persistence."""

from __future__ import annotations

import time
import uuid

import pytest
from kubernetes import client
from kubernetes.client.rest import ApiException

from devtools.harness.apiserver import api_client

pytestmark = pytest.mark.apiserver


def _retry(fn, attempts: int = 50, delay: float = 0.2):
    """Right after a (re)start, lists may answer 429/503 while storage initialises."""
    for i in range(attempts):
        try:
            return fn()
        except ApiException as e:
            if e.status in (429, 500, 503) and i < attempts - 1:
                time.sleep(delay)
                continue
            raise
        except Exception:  # connection refused/reset while the server comes back
            if i < attempts - 1:
                time.sleep(delay)
                continue
            raise


def _ns(kube_admin, prefix: str) -> str:
    name = f"{prefix}-{uuid.uuid4().hex[:6]}"
    _retry(lambda: client.CoreV1Api(kube_admin).create_namespace(
        client.V1Namespace(metadata=client.V1ObjectMeta(name=name))))
    return name


def test_readyz(apiserver):
    status, body = apiserver.readyz()
    assert status == 200, body
    assert body.strip() == "ok"
    assert apiserver.url.startswith("https://127.0.0.1:")


def test_kubectl_and_identities(apiserver, kubectl):
    out = kubectl("auth", "whoami", "-o", "jsonpath={.status.userInfo.username}").stdout
    assert out == "admin"
    op = kubectl("auth", "whoami", "-o", "jsonpath={.status.userInfo.username} {.status.userInfo.groups}",
                 kubeconfig=apiserver.operator_kubeconfig).stdout
    assert op.startswith("system:serviceaccount:rollup-operator-system:rollup-operator ")
    for g in ("system:serviceaccounts", "system:serviceaccounts:rollup-operator-system", "system:authenticated"):
        assert g in op
    failed = kubectl("get", "nosuchkind", check=False)
    assert failed.returncode != 0 and failed.stderr


def test_admin_creates_namespace_and_configmap(kube_admin):
    core = client.CoreV1Api(kube_admin)
    ns = _ns(kube_admin, "harness")
    core.create_namespaced_config_map(ns, client.V1ConfigMap(
        metadata=client.V1ObjectMeta(name="cm1"), data={"k": "v"}))
    got = core.read_namespaced_config_map("cm1", ns)
    assert got.data == {"k": "v"}
    assert got.metadata.uid


def test_rbac_denies_operator_until_granted(apiserver, kube_admin):
    ns = _ns(kube_admin, "rbac")
    op = client.CoreV1Api(api_client(apiserver.operator_kubeconfig))
    with pytest.raises(ApiException) as exc:
        op.list_namespaced_config_map(ns)
    assert exc.value.status == 403
    assert "system:serviceaccount:rollup-operator-system:rollup-operator" in exc.value.body

    # the unprivileged user is denied too
    user = client.CoreV1Api(api_client(apiserver.user_kubeconfig))
    with pytest.raises(ApiException) as exc:
        user.list_namespaced_config_map(ns)
    assert exc.value.status == 403

    rbac = client.RbacAuthorizationV1Api(kube_admin)
    role_name = f"harness-cm-reader-{ns}"
    rbac.create_cluster_role(client.V1ClusterRole(
        metadata=client.V1ObjectMeta(name=role_name),
        rules=[client.V1PolicyRule(api_groups=[""], resources=["configmaps"], verbs=["get", "list", "watch"])],
    ))
    rbac.create_cluster_role_binding(client.V1ClusterRoleBinding(
        metadata=client.V1ObjectMeta(name=role_name),
        role_ref=client.V1RoleRef(api_group="rbac.authorization.k8s.io", kind="ClusterRole", name=role_name),
        subjects=[client.RbacV1Subject(kind="ServiceAccount", name=apiserver.sa_name,
                                       namespace=apiserver.sa_namespace)],
    ))
    try:
        # RBAC's authorizer cache updates from a watch: allow a moment.
        deadline = time.monotonic() + 10
        while True:
            try:
                items = op.list_namespaced_config_map(ns).items
                break
            except ApiException as e:
                if e.status != 403 or time.monotonic() > deadline:
                    raise
                time.sleep(0.1)
        assert isinstance(items, list)
        # still no write permission, and the plain user is still denied
        with pytest.raises(ApiException) as exc:
            op.create_namespaced_config_map(ns, client.V1ConfigMap(metadata=client.V1ObjectMeta(name="x")))
        assert exc.value.status == 403
        with pytest.raises(ApiException) as exc:
            user.list_namespaced_config_map(ns)
        assert exc.value.status == 403
    finally:
        rbac.delete_cluster_role_binding(role_name)
        rbac.delete_cluster_role(role_name)


def test_restart_keeps_objects(apiserver, kube_admin):
    core = client.CoreV1Api(kube_admin)
    ns = _ns(kube_admin, "restart")
    core.create_namespaced_config_map(ns, client.V1ConfigMap(
        metadata=client.V1ObjectMeta(name="survivor"), data={"a": "1"}))
    url, port, old_pid = apiserver.url, apiserver.port, apiserver.pid

    apiserver.restart()

    assert apiserver.pid != old_pid
    assert apiserver.url == url and apiserver.port == port
    assert apiserver.readyz()[0] == 200
    # the same (session) client and kubeconfig work: same CA, same tokens, same port
    got = _retry(lambda: core.read_namespaced_config_map("survivor", ns))
    assert got.data == {"a": "1"}
    # and writes work after the restart
    _retry(lambda: core.create_namespaced_config_map(ns, client.V1ConfigMap(
        metadata=client.V1ObjectMeta(name="after-restart"))))


def test_kill_then_start_recovers(apiserver, kube_admin):
    """A crash (SIGKILL) of apiserver+etcd loses nothing that was acknowledged."""
    core = client.CoreV1Api(kube_admin)
    ns = _ns(kube_admin, "crash")
    core.create_namespaced_config_map(ns, client.V1ConfigMap(metadata=client.V1ObjectMeta(name="acked")))
    apiserver.kill()
    apiserver.start()
    assert _retry(lambda: core.read_namespaced_config_map("acked", ns)).metadata.name == "acked"


def test_pause_resume(apiserver):
    apiserver.pause()
    try:
        status, _ = apiserver.readyz(timeout=1)
        assert status == 0  # timed out: the server does not answer while stopped
    finally:
        apiserver.resume()
    assert apiserver.readyz()[0] == 200
