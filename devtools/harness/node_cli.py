"""``python -m devtools.harness.node``: a single-node cluster until Ctrl-C, or ``--cleanup``."""

from __future__ import annotations

import time

from . import node_host
from .node import LocalNode


def main(argv: list[str] | None = None) -> int:
    import argparse
    import signal

    ap = argparse.ArgumentParser(prog="python -m devtools.harness.node", description="Run the single-node cluster until Ctrl-C.")
    ap.add_argument("--cleanup", action="store_true", help="only remove what a killed earlier run left on this machine")
    args = ap.parse_args(argv)
    if args.cleanup:
        with node_host.MachineLock(timeout=5):
            problems = node_host.teardown(node_host.read_state().get("run_dir"))
        print("[node] clean" if not problems else f"[node] left: {problems}")
        return 1 if problems else 0
    signal.signal(signal.SIGTERM, lambda *_: (_ for _ in ()).throw(KeyboardInterrupt()))
    node = LocalNode().start()
    try:
        print(f"[node] up in {node.timings['total']:.1f}s {node.timings}")
        print(f"export KUBECONFIG={node.admin_kubeconfig}", flush=True)
        while all(c.alive() for c in node.components.values()):
            time.sleep(1)
        print("[node] a component exited", flush=True)
    except KeyboardInterrupt:
        pass
    finally:
        node.stop()
    return 0
