"""``make sandbox MODE=pod``: the operator as users run it, as a Pod of manifests/ (image built from
this tree) in the harness's single-node cluster (devtools/harness/node.py), with the Elasticsearch
emulator as a Pod behind a Service. Slower to start than the process mode (a cluster, an image
build when the tree changed) and needs root; use it to see probes, the read-only root, restarts,
rollouts and in-cluster config; use the default process mode to iterate on operator code."""

from __future__ import annotations

import signal
import time

from tests.e2e import ops
from tests.e2e.providers import NS, OP_NS, OPERATOR_USER, LocalNodeCluster

SAMPLES = """
apiVersion: rollup.esops.dev/v1alpha1
kind: ElasticsearchConnection
metadata: {name: local-es, namespace: NS}
spec:
  url: URL
  auth: {basic: {secretRef: {name: es-credentials}}}
  syncInterval: 10s
---
apiVersion: rollup.esops.dev/v1alpha1
kind: RollupJob
metadata: {name: metrics-managed, namespace: NS}
spec:
  connectionRef: {name: local-es}
  desiredState: started
  deletionPolicy: Delete
  stop: {timeout: 5s}
  config:
    indexPattern: rollup-source
    rollupIndex: metrics-rollup
    cron: "*/20 * * * * ?"
    groups:
      dateHistogram: {field: timestamp, fixedInterval: 1h}
    metrics:
      - {field: value, metrics: [min, max, avg]}
"""


def main() -> int:
    c = LocalNodeCluster(emulator_args=("--page-duration", "8", "--pages-per-run", "2"))
    try:
        ops.install(c)
        c.es.client.indices.create(index="rollup-source", mappings={"properties": {
            "timestamp": {"type": "date"}, "value": {"type": "float"}, "host": {"type": "keyword"}}})
        c.kubectl("create", "namespace", NS)
        c.kubectl("-n", NS, "create", "secret", "generic", "es-credentials", "--type=kubernetes.io/basic-auth",
                  f"--from-literal=username={OPERATOR_USER}", f"--from-literal=password={c.es.operator_password}")
        c.kubectl("apply", "-f", "-", input=SAMPLES.replace("NS", NS).replace("URL", c.es.url_for_operator))
        print(f"""
[sandbox] ready (mode pod): the operator runs as a Pod of deploy/rollup-operator in {OP_NS}.
  Elasticsearch emulator (Pod, Service ClusterIP): {c.es.url_for_operator}   (control API: /_emulator)
  In another shell:
    export KUBECONFIG={c.kubeconfig}
    kubectl -n {OP_NS} get pods -o wide
    kubectl -n {OP_NS} logs -f deploy/rollup-operator
    kubectl get rollupjobs -n {NS} -w
    kubectl patch rollupjob -n {NS} metrics-managed --type merge -p '{{"spec":{{"desiredState":"stopped"}}}}'
  Ctrl-C stops the cluster and removes everything it added to this machine.
""", flush=True)
        signal.signal(signal.SIGTERM, lambda *_: (_ for _ in ()).throw(KeyboardInterrupt()))
        while all(comp.alive() for comp in c.node.components.values()):
            time.sleep(1)
        print("[sandbox] a cluster component exited:\n" + "\n".join(
            comp.tail(20) for comp in c.node.components.values() if not comp.alive()), flush=True)
        return 1
    except KeyboardInterrupt:
        return 0
    finally:
        c.close()
        print("[sandbox] stopped.", flush=True)
