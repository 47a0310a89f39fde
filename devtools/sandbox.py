"""A local sandbox: real kube-apiserver + etcd, the Elasticsearch emulator, manifests/, the operator.

    make sandbox            # or: .venv/bin/python -m devtools.sandbox [--es-port 9200] [--version 8.17.0]
    make sandbox MODE=pod   # or: .venv/bin/python -m devtools.sandbox --mode pod (root; devtools/sandbox_pod.py)

Prints the ``export KUBECONFIG=...`` line to use in another shell, then runs the operator in the
foreground (mode ``process``, the default: seconds to start, no root) or as a Pod of manifests/ in
the harness's single-node cluster (mode ``pod``). Ctrl-C stops everything it started.
"""

from __future__ import annotations

import argparse
import signal
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

from devtools.harness.apiserver import APIServer, ensure_built  # noqa: E402

NS = "sandbox"
SAMPLES = f"""
apiVersion: v1
kind: Namespace
metadata: {{name: {NS}}}
---
apiVersion: rollup.esops.dev/v1alpha1
kind: ElasticsearchConnection
metadata: {{name: local-es, namespace: {NS}}}
spec:
  url: URL
  syncInterval: 10s
---
apiVersion: rollup.esops.dev/v1alpha1
kind: RollupJob
metadata: {{name: sensor-hourly, namespace: {NS}}}
spec:
  connectionRef: {{name: local-es}}
  desiredState: started
  stop: {{timeout: 5s}}
---
apiVersion: rollup.esops.dev/v1alpha1
kind: RollupJob
metadata: {{name: logs-daily, namespace: {NS}}}
spec:
  connectionRef: {{name: local-es}}
  desiredState: stopped
---
apiVersion: rollup.esops.dev/v1alpha1
kind: RollupJob
metadata: {{name: metrics-managed, namespace: {NS}}}
spec:
  connectionRef: {{name: local-es}}
  desiredState: started
  deletionPolicy: Delete
  config:
    indexPattern: rollup-source
    rollupIndex: metrics-rollup
    cron: "*/20 * * * * ?"
    groups:
      dateHistogram: {{field: timestamp, fixedInterval: 1h}}
    metrics:
      - {{field: value, metrics: [min, max, avg]}}
"""


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--es-port", type=int, default=0, help="emulator port (default: a free one)")
    p.add_argument("--version", default="8.17.0", help="Elasticsearch version the emulator plays")
    p.add_argument("--mode", choices=["process", "pod"], default="process",
                   help="process: the operator as a local process (default); pod: as a Pod in a single-node cluster")
    args = p.parse_args(argv)
    if args.mode == "pod":
        from devtools.sandbox_pod import main as pod_main

        return pod_main()

    from es_rollup_emulator import EmulatorThread, seed_migration

    print("[sandbox] building (or reusing) the kube-apiserver harness...", flush=True)
    api = APIServer(binary=ensure_built()).start()
    # Jobs that index for 8 s pages every 20 s: stopping one during a page takes a few seconds.
    emu = EmulatorThread(version=args.version, page_duration=8.0, pages_per_run=2, port=args.es_port).start()
    op = None
    try:
        emu.seed_rollup_usage()
        emu.add_job("sensor-hourly", {"cron": "*/20 * * * * ?"}, state="started")
        emu.add_job("logs-daily", {"cron": "*/20 * * * * ?", "rollup_index": "logs-rollup"}, state="started")
        seed_migration.seed(emu)  # sensor-5m (downsampleable) and weblogs-monthly (blocked), not yet adopted
        kubectl = ["kubectl", "--kubeconfig", api.admin_kubeconfig]
        subprocess.run([*kubectl, "apply", "--server-side", "-k", str(REPO / "manifests")], check=True, capture_output=True)
        subprocess.run([*kubectl, "wait", "--for=condition=Established", "crd/rollupjobs.rollup.esops.dev",
                        "crd/elasticsearchconnections.rollup.esops.dev", "--timeout=60s"], check=True, capture_output=True)
        subprocess.run([*kubectl, "apply", "-f", "-"], input=SAMPLES.replace("URL", emu.url), text=True, check=True,
                       capture_output=True)
        print(f"""
[sandbox] ready.
  Elasticsearch emulator {args.version}: {emu.url}   (control API: {emu.url}/_emulator)
  kube-apiserver: {api.url}

  In another shell:
    export KUBECONFIG={api.admin_kubeconfig}
    kubectl get rollupjobs -n {NS} -w
    kubectl patch rollupjob -n {NS} sensor-hourly --type merge -p '{{"spec":{{"desiredState":"stopped"}}}}'
    kubectl wait -n {NS} --for=condition=Ready rollupjob/sensor-hourly --timeout=2m
    kubectl get events -n {NS}

  The operator runs below with the RBAC of manifests/ (its ServiceAccount's identity). Ctrl-C stops everything.
""", flush=True)
        op = subprocess.Popen([sys.executable, "-m", "rollup_operator.cli.main", "run", "--kubeconfig", api.operator_kubeconfig,
                               "--http-port", "0"])
        signal.signal(signal.SIGTERM, lambda *_: op.send_signal(signal.SIGINT))
        while op.poll() is None:
            time.sleep(0.5)
    except KeyboardInterrupt:
        pass
    finally:
        if op is not None and op.poll() is None:
            op.send_signal(signal.SIGINT)
            try:
                op.wait(15)
            except subprocess.TimeoutExpired:
                op.kill()
        emu.close()
        api.stop()
        print("[sandbox] stopped.", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
