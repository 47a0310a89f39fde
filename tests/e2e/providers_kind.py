"""The ``kind`` provider of the cluster suite: what users run where Docker runs.

A throw-away kind cluster (own kubeconfig under .cache/e2e/), the operator image from
``docker build`` of the unchanged Dockerfile, ``kind load``ed, and a real Elasticsearch 8.x
(tests/e2e/elasticsearch.yaml, security on), reached from the test through ``kubectl
port-forward``. Real Elasticsearch keeps no request log and its stop timing cannot be set, so
the suite's checks that need those are skipped for this provider only (the rest are the same).
"""

from __future__ import annotations

import os
import secrets
import shutil
import socket
import subprocess
import time

from .providers import ES_NS, HERE, OP_NS, ROOT, Backend, Cluster, E2EError, run, wait_for

IMAGE = "rollup-operator:e2e"
ES_VERSION = os.environ.get("ES_VERSION", "8.17.4")


def skip_reason() -> str | None:
    for tool in ("docker", "kind", "kubectl"):
        if shutil.which(tool) is None:
            return f"{tool} is not installed"
    try:
        p = subprocess.run(["docker", "info"], capture_output=True, text=True, timeout=30)
    except subprocess.TimeoutExpired:
        return "`docker info` did not answer within 30s"
    if p.returncode != 0:
        lines = (p.stderr or p.stdout).strip().splitlines()
        return "no running Docker engine (`docker info`: " + (lines[-1] if lines else f"exit {p.returncode}") + ")"
    return None


class KindCluster(Cluster):
    name = "kind"

    def __init__(self, progress=print) -> None:
        self.progress = progress
        self.cluster = os.environ.get("CLUSTER_NAME", "rollup-e2e-py")
        work = ROOT / ".cache" / "e2e"
        work.mkdir(parents=True, exist_ok=True)
        self.kubeconfig = str(work / f"kubeconfig-{self.cluster}")
        self._pf = None
        run(["kind", "create", "cluster", "--name", self.cluster, "--kubeconfig", self.kubeconfig, "--wait", "180s"],
            timeout=600)
        try:
            run(["docker", "build", "-t", IMAGE, str(ROOT)], timeout=1200)
            run(["kind", "load", "docker-image", IMAGE, "--name", self.cluster], timeout=600)
            self.es = self._elasticsearch()
        except BaseException:
            self.close()
            raise

    def _elasticsearch(self) -> Backend:
        from elasticsearch import Elasticsearch

        image = f"docker.elastic.co/elasticsearch/elasticsearch:{ES_VERSION}"
        if run(["docker", "image", "inspect", image], check=False).returncode != 0:
            run(["docker", "pull", image], timeout=1200)
        run(["kind", "load", "docker-image", image, "--name", self.cluster], timeout=900)
        pw = "elastic-" + secrets.token_hex(8)
        self.kubectl("create", "namespace", ES_NS)
        self.kubectl("-n", ES_NS, "create", "secret", "generic", "elastic-credentials", f"--from-literal=password={pw}")
        text = (HERE / "elasticsearch.yaml").read_text()
        self.kubectl("apply", "-f", "-", input=text.replace("elasticsearch:8.17.4", f"elasticsearch:{ES_VERSION}"))
        self.kubectl("-n", ES_NS, "rollout", "status", "deploy/elasticsearch", "--timeout=600s", timeout=660)
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
        self._pf = subprocess.Popen(["kubectl", "--kubeconfig", self.kubeconfig, "-n", ES_NS, "port-forward",
                                     "svc/elasticsearch", f"{port}:9200"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        client = Elasticsearch(f"http://127.0.0.1:{port}", basic_auth=("elastic", pw), request_timeout=30)
        wait_for(lambda: _healthy(client), 300, "Elasticsearch to answer through the port-forward")
        be = Backend(url_for_operator=f"http://elasticsearch.{ES_NS}.svc.cluster.local:9200", client=client, emulated=False)
        client.security.put_role(name="rollup_operator_e2e", cluster=["manage_rollup", "monitor"])
        client.security.put_user(username="rollup-operator-e2e", password=be.operator_password, roles=["rollup_operator_e2e"])
        client.indices.create(index="rollup-usage-seed", mappings={"_meta": {"_rollup": {}}})
        return be

    def http_get(self, pod: dict, port: int, path: str) -> tuple[int, str]:
        # the Pod network of a kind node is not routed to the host: the API server's Pod proxy
        # connects to the Pod IP for us
        p = self.kubectl("get", "--raw", f"/api/v1/namespaces/{OP_NS}/pods/{pod['metadata']['name']}:{port}/proxy{path}",
                         check=False)
        return (200 if p.returncode == 0 else 500), p.stdout

    def close(self) -> None:
        if self._pf:
            self._pf.terminate()
        if os.environ.get("KEEP_CLUSTER") != "1":
            run(["kind", "delete", "cluster", "--name", self.cluster], check=False, timeout=300)


def _healthy(client) -> bool:
    try:
        client.cluster.health(wait_for_status="yellow", timeout="5s")
        return True
    except Exception:
        time.sleep(1)
        return False


__all__ = ["KindCluster", "skip_reason", "E2EError"]
