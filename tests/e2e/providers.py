"""Cluster providers of the end-to-end suite: where the cluster and Elasticsearch come from.

* ``local-node`` (what CI runs): devtools/harness/node.py's single-node cluster on this machine, the
  operator image built here with buildah, and the project's Elasticsearch emulator running as a
  Pod from that same image behind a Service; the ElasticsearchConnection uses the Service's
  ClusterIP (no DNS add-on). The emulator's request log shows every call the operator made.
* ``kind`` (what users run; tests/e2e/providers_kind.py): a kind cluster, ``docker build``, a real
  Elasticsearch 8.x; where no Docker engine runs it skips.

Both give the suite (test_e2e_cluster.py) a ``Cluster``: ``kubectl()``, an ``es`` backend
(official ``elasticsearch`` client as the superuser, ``requests()`` = the request log or None,
``slow_stop()`` where the server's timing can be controlled), and ``http_get(pod_ip, port, path)``.
"""

from __future__ import annotations

import json
import secrets
import subprocess
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent.parent
ES_NS, NS = "es-e2e", "rollup-e2e"


def manifest_docs() -> list[dict]:
    """Every object of the files manifests/kustomization.yaml lists (what `kubectl apply -k` installs)."""
    import yaml

    base = ROOT / "manifests"
    docs = []
    for res in yaml.safe_load((base / "kustomization.yaml").read_text()).get("resources", []):
        if (base / res).is_file():
            docs += [d for d in yaml.safe_load_all((base / res).read_text()) if d]
    return docs


_DEPLOYMENT = next(d for d in manifest_docs() if d["kind"] == "Deployment")
OP_NS = _DEPLOYMENT["metadata"]["namespace"]  # taken from manifests/, whatever it is there
OP_SA = _DEPLOYMENT["spec"]["template"]["spec"]["serviceAccountName"]
OP_LABEL = ",".join(f"{k}={v}" for k, v in _DEPLOYMENT["spec"]["selector"]["matchLabels"].items())
OPERATOR_USER = "rollup-operator-e2e"
# The operator's GET / needs `monitor` besides `manage_rollup` (tests/e2e/README.md, known issue).
OPERATOR_PRIVILEGES = "manage_rollup,monitor"


class E2EError(AssertionError):
    pass


def run(cmd: list[str], *, check: bool = True, input: str | None = None, timeout: float = 180) -> subprocess.CompletedProcess:
    p = subprocess.run(cmd, capture_output=True, text=True, input=input, timeout=timeout)
    if check and p.returncode != 0:
        raise E2EError(f"`{' '.join(cmd)}` failed (exit {p.returncode}): {p.stderr.strip() or p.stdout.strip()}")
    return p


def wait_for(pred, timeout: float, what: str, interval: float = 1.0, detail=None):
    deadline = time.monotonic() + timeout
    while True:
        value = pred()
        if value:
            return value
        if time.monotonic() > deadline:
            raise E2EError(f"timed out after {timeout:.0f}s waiting for {what}" + (f"\n{detail()}" if detail else ""))
        time.sleep(interval)


@dataclass
class Backend:
    """Elasticsearch as the suite sees it."""

    url_for_operator: str  # what the ElasticsearchConnection names
    client: object         # elasticsearch.Elasticsearch as the superuser
    emulated: bool
    operator_password: str = field(default_factory=lambda: "op-" + secrets.token_hex(12))

    def control(self, method: str, path: str, body: dict | None = None) -> dict:
        if not self.emulated:
            raise E2EError("the emulator's control API exists only on the local-node provider")
        resp = self.client.perform_request(method, f"/_emulator/{path}", body=body,
                                           headers={"accept": "application/json", "content-type": "application/json"})
        return resp.body

    def job_state(self, job_id: str) -> str:
        jobs = self.client.rollup.get_jobs(id=job_id).body["jobs"]
        return jobs[0]["status"]["job_state"] if jobs else "absent"

    def requests(self, method: str | None = None, path: str | None = None) -> list[dict] | None:
        """The request log (None where the server keeps none: real Elasticsearch)."""
        if not self.emulated:
            return None
        query = "&".join(f"{k}={v}" for k, v in (("method", method), ("path", path)) if v)
        return self.control("GET", "requests" + (f"?{query}" if query else ""))["requests"]

    def slow_stop(self, job_id: str, seconds: float) -> bool:
        """Make a stop of job_id take ``seconds`` (indexing an endless run); False if not possible."""
        if not self.emulated:
            return False
        self.control("POST", f"jobs/{job_id}/_timing", {"stop_delay": seconds, "pages_per_run": None,
                                                         "page_duration": 60})
        self.control("POST", f"jobs/{job_id}/_trigger")
        return True


class Cluster:
    """What every provider gives the suite."""

    name = "?"
    kubeconfig: str
    es: Backend

    def kubectl(self, *args: str, check: bool = True, input: str | None = None, timeout: float = 180):
        return run(["kubectl", "--kubeconfig", self.kubeconfig, *args], check=check, input=input, timeout=timeout)

    def get(self, *args: str) -> dict:
        return json.loads(self.kubectl("get", *args, "-o", "json").stdout)

    def http_get(self, pod: dict, port: int, path: str) -> tuple[int, str]:
        raise NotImplementedError

    def wait_rollout(self, namespace: str, deployment: str, timeout: float = 180) -> None:
        p = self.kubectl("-n", namespace, "rollout", "status", f"deploy/{deployment}", f"--timeout={int(timeout)}s",
                         check=False, timeout=timeout + 30)
        if p.returncode != 0:
            raise E2EError(f"deploy/{deployment} did not roll out: {p.stderr}\n{self.diagnostics()}")

    def diagnostics(self) -> str:
        parts = []
        for args in (("get", "pods", "-A", "-o", "wide"), ("-n", OP_NS, "describe", "pods", "-l", OP_LABEL),
                     ("-n", OP_NS, "logs", "-l", OP_LABEL, "--tail=80", "--prefix"),
                     ("-n", NS, "get", "rollupjobs,elasticsearchconnections", "-o", "yaml"),
                     ("get", "events", "-A", "--sort-by=.lastTimestamp")):
            p = self.kubectl(*args, check=False)
            parts.append(f"$ kubectl {' '.join(args)}\n{p.stdout[-6000:]}{p.stderr[-2000:]}")
        return "\n".join(parts)

    def close(self) -> None:
        pass


EMULATOR_MANIFEST = """
apiVersion: v1
kind: Namespace
metadata: {name: es-e2e}
---
apiVersion: apps/v1
kind: Deployment
metadata: {name: elasticsearch, namespace: es-e2e, labels: {app: elasticsearch}}
spec:
  replicas: 1
  selector: {matchLabels: {app: elasticsearch}}
  template:
    metadata: {labels: {app: elasticsearch}}
    spec:
      securityContext: {runAsNonRoot: true, runAsUser: 65532, seccompProfile: {type: RuntimeDefault}}
      containers:
        - name: emulator
          image: IMAGE
          imagePullPolicy: Never
          args: [--host, 0.0.0.0, --port, "9200", --version, "8.17.0", --seed-rollup-usage, EMU_ARGS
                 --user, "elastic:ADMIN_PW:all", --user, "OP_USER:OP_PW:OP_PRIVS"]
          ports: [{name: http, containerPort: 9200}]
          readinessProbe: {tcpSocket: {port: http}, periodSeconds: 2}
          securityContext: {allowPrivilegeEscalation: false, readOnlyRootFilesystem: true, capabilities: {drop: [ALL]}}
          volumeMounts: [{name: tmp, mountPath: /tmp}]
      volumes: [{name: tmp, emptyDir: {}}]
---
apiVersion: v1
kind: Service
metadata: {name: elasticsearch, namespace: es-e2e}
spec:
  selector: {app: elasticsearch}
  ports: [{name: http, port: 9200, targetPort: http}]
"""


class LocalNodeCluster(Cluster):
    name = "local-node"

    def __init__(self, progress=print, emulator_args: tuple[str, ...] = ("--no-auto-trigger",)) -> None:
        from devtools.harness.node import LocalNode

        self.emulator_args = emulator_args
        self.node = LocalNode(progress=progress).start()
        self.kubeconfig = self.node.admin_kubeconfig
        try:
            self.es = self._emulator()
        except BaseException:
            self.node.stop()
            raise

    def _emulator(self) -> Backend:
        from elasticsearch import Elasticsearch

        admin_pw = "admin-" + secrets.token_hex(8)
        op_pw = "op-" + secrets.token_hex(12)
        manifest = (EMULATOR_MANIFEST.replace("IMAGE", self.node.images["emulator"].name).replace("ADMIN_PW", admin_pw)
                    .replace("OP_USER", OPERATOR_USER).replace("OP_PW", op_pw).replace("OP_PRIVS", OPERATOR_PRIVILEGES)
                    .replace("EMU_ARGS", "".join(f"{json.dumps(a)}, " for a in self.emulator_args)))
        self.kubectl("apply", "-f", "-", input=manifest)
        self.node.wait_rollout(ES_NS, "elasticsearch", timeout=120)
        ip = self.get("-n", ES_NS, "service", "elasticsearch")["spec"]["clusterIP"]
        url = f"http://{ip}:9200"
        client = Elasticsearch(url, basic_auth=("elastic", admin_pw), request_timeout=30, max_retries=0)
        wait_for(lambda: _answers(client), 90, f"the emulator to answer at its ClusterIP {url}",
                 detail=lambda: self.diagnostics() + "\n" + self.node.logs("kube-proxy", 30))
        return Backend(url_for_operator=url, client=client, emulated=True, operator_password=op_pw)

    def http_get(self, pod: dict, port: int, path: str) -> tuple[int, str]:
        url = f"http://{pod['status']['podIP']}:{port}{path}"  # the host routes the Pod network
        try:
            with urllib.request.urlopen(url, timeout=10) as r:
                return r.status, r.read().decode(errors="replace")
        except urllib.error.HTTPError as e:
            return e.code, e.read().decode(errors="replace")

    def wait_rollout(self, namespace: str, deployment: str, timeout: float = 180) -> None:
        self.node.wait_rollout(namespace, deployment, timeout)

    def diagnostics(self) -> str:
        comps = "\n".join(self.node.logs(n, 15) for n in ("kubelet", "containerd"))
        return super().diagnostics() + "\n" + comps

    def close(self) -> None:
        self.node.stop()


def _answers(client) -> bool:
    try:
        return bool(client.info())
    except Exception:
        return False
