"""Helpers for the leader election tests: the Role from the HA contract, the Lease as a user
reads it, per-process metrics, and a TCP proxy that can freeze one process's API server traffic."""

from __future__ import annotations

import datetime as dt
import re
import socket
import threading
import time
from pathlib import Path

import yaml
from kubernetes import client
from kubernetes.client.rest import ApiException

LEASE = "rollup-operator"


def grant_leader_election(api: client.ApiClient, namespace: str, sa_namespace: str, sa_name: str) -> None:
    """The Role + RoleBinding of docs' HA contract (manifests/leader-election-rbac.yaml), in ``namespace``."""
    rbac = client.RbacAuthorizationV1Api(api)
    name = "rollup-operator-leader-election"
    rbac.create_namespaced_role(namespace, {
        "metadata": {"name": name},
        "rules": [
            {"apiGroups": ["coordination.k8s.io"], "resources": ["leases"], "verbs": ["get", "create", "update"]},
            {"apiGroups": [""], "resources": ["events"], "verbs": ["create"]},
        ],
    })
    rbac.create_namespaced_role_binding(namespace, {
        "metadata": {"name": name},
        "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": name},
        "subjects": [{"kind": "ServiceAccount", "name": sa_name, "namespace": sa_namespace}],
    })


def le_args(namespace: str, lease: float, renew: float, retry: float) -> list[str]:
    return ["--leader-elect", "--leader-election-namespace", namespace,
            "--leader-election-lease-duration", str(lease), "--leader-election-renew-deadline", str(renew),
            "--leader-election-retry-period", str(retry)]


def read_lease(api: client.ApiClient, namespace: str, name: str = LEASE) -> dict | None:
    try:
        return client.CoordinationV1Api(api).read_namespaced_lease(name, namespace).to_dict()
    except ApiException as e:
        if e.status == 404:
            return None
        raise


def holder(api, namespace) -> str | None:
    lease = read_lease(api, namespace)
    return (lease or {}).get("spec", {}).get("holder_identity")


def wait_holder(api, namespace, pred, timeout: float, poll: float = 0.02) -> tuple[dict, float]:
    """Poll the Lease until ``pred(holderIdentity)``; returns (lease, time.time() when seen)."""
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        last = read_lease(api, namespace)
        h = (last or {}).get("spec", {}).get("holder_identity")
        if pred(h):
            return last, time.time()
        time.sleep(poll)
    raise AssertionError(f"Lease holder condition not met in {timeout}s; last: {last}")


def ts(t: dt.datetime) -> float:
    return t.timestamp()


def identity_of(proc) -> str:
    m = re.search(r"leader election: identity (\S+),", proc.logs())
    assert m, proc.logs()[-2000:]
    return m.group(1)


def wait_identity(proc, timeout: float = 15) -> str:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if "leader election: identity" in proc.logs():
            return identity_of(proc)
        time.sleep(0.05)
    raise AssertionError(proc.logs()[-2000:])


_SAMPLE = re.compile(r"^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{[^}]*\})?\s+([0-9.eE+-]+|NaN)$")


def metric_sum(text: str, name: str, **labels: str) -> float:
    total = 0.0
    for line in text.splitlines():
        m = _SAMPLE.match(line)
        if not m or m.group(1) != name:
            continue
        got = dict(re.findall(r'(\w+)="([^"]*)"', m.group(2) or ""))
        if all(got.get(k) == v for k, v in labels.items()):
            total += float(m.group(3))
    return total


def activity(proc) -> dict[str, float]:
    """What a process sent, from its own /metrics: Kubernetes writes by kind and Elasticsearch calls."""
    text = proc.metrics()
    out = {k: metric_sum(text, "rollup_operator_kubernetes_writes_total", kind=k)
           for k in ("status", "finalizer", "event", "lease")}
    out["elasticsearch"] = metric_sum(text, "rollup_operator_elasticsearch_request_duration_seconds_count")
    out["leader"] = metric_sum(text, "rollup_operator_leader")
    out["transitions"] = metric_sum(text, "rollup_operator_leader_transitions_total")
    return out


def proxied_kubeconfig(kubeconfig: str, port: int, out: Path) -> str:
    cfg = yaml.safe_load(Path(kubeconfig).read_text())
    for c in cfg["clusters"]:
        server = c["cluster"]["server"]
        c["cluster"]["server"] = re.sub(r"//[^/]+", f"//127.0.0.1:{port}", server, count=1)
    out.write_text(yaml.safe_dump(cfg))
    return str(out)


class FreezableProxy:
    """A TCP proxy on 127.0.0.1. ``freeze()`` stops forwarding in both directions (bytes are held,
    connections stay open: to the client the API server just stops answering, as in a network
    partition); ``close()`` drops every connection without delivering what was held."""

    def __init__(self, upstream_host: str, upstream_port: int):
        self.upstream = (upstream_host, upstream_port)
        self.sock = socket.socket()
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(64)
        self.port = self.sock.getsockname()[1]
        self.flowing = threading.Event()
        self.flowing.set()
        self.closed = False
        self.conns: list[socket.socket] = []
        self._lock = threading.Lock()
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self):
        while not self.closed:
            try:
                c, _ = self.sock.accept()
            except OSError:
                return
            if self.closed:
                c.close()
                return
            try:
                u = socket.create_connection(self.upstream, timeout=5)
                u.settimeout(None)
            except OSError:
                c.close()
                continue
            with self._lock:
                self.conns += [c, u]
            for a, b in ((c, u), (u, c)):
                threading.Thread(target=self._pump, args=(a, b), daemon=True).start()

    def _pump(self, src: socket.socket, dst: socket.socket):
        try:
            while True:
                data = src.recv(65536)
                if not data:
                    break
                while not self.flowing.wait(0.1):
                    if self.closed:
                        return
                if self.closed:
                    return
                dst.sendall(data)
        except OSError:
            pass
        finally:
            for s in (src, dst):
                try:
                    s.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass

    def freeze(self):
        self.flowing.clear()

    def close(self):
        self.closed = True
        self.sock.close()
        with self._lock:
            for s in self.conns:
                try:
                    s.close()
                except OSError:
                    pass
