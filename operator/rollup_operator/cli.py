"""``rollup-operator``: the command line. ``rollup-operator run --help`` explains every flag."""

from __future__ import annotations

import argparse
import asyncio
import logging
import signal
import sys
from typing import Sequence

from . import logs

log = logging.getLogger("rollup_operator")


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="rollup-operator",
        description="Kubernetes operator that keeps Elasticsearch rollup jobs in the state their RollupJob resources ask for.",
    )
    sub = p.add_subparsers(dest="command", required=True, metavar="COMMAND")
    run = sub.add_parser(
        "run",
        help="run the operator against the current kubeconfig or in-cluster config",
        description=(
            "Run the operator. Credentials come from --kubeconfig, else $KUBECONFIG, else the in-cluster "
            "service account, else ~/.kube/config. By default every namespace is watched."
        ),
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    scope = run.add_mutually_exclusive_group()
    scope.add_argument("-n", "--namespace", action="append", default=[], metavar="NS",
                       help="watch only this namespace (repeat for several)")
    scope.add_argument("-A", "--all-namespaces", action="store_true", help="watch every namespace (the default)")
    run.add_argument("--kubeconfig", metavar="PATH", help="kubeconfig file to use instead of $KUBECONFIG / in-cluster config")
    run.add_argument("--liveness-endpoint", metavar="URL", default=None,
                     help="serve kopf's liveness probe here, e.g. http://0.0.0.0:8080/healthz (off if unset)")
    run.add_argument("--http-port", type=int, default=9090,
                     help="port for /metrics (Prometheus) and /readyz; 0 disables it")
    run.add_argument("--http-host", default="0.0.0.0", help="address the metrics/readiness server binds to")
    run.add_argument("--log-format", choices=("text", "json"), default="text",
                     help="log line format; json puts job, namespace and connection in every line")
    run.add_argument("--log-level", default="INFO", choices=("DEBUG", "INFO", "WARNING", "ERROR"), help="log level")
    run.add_argument("--poll-interval", type=float, default=1.0, metavar="SECONDS",
                     help="how often a connection re-reads its jobs while some job waits for a state change")
    run.add_argument("--coalesce-window", type=float, default=0.05, metavar="SECONDS",
                     help="how long a shared read waits for other jobs to join before it is sent")
    run.add_argument("--kube-writers", type=int, default=16, metavar="N",
                     help="status/event writes to the Kubernetes API in flight at once")
    return p


async def _run(args: argparse.Namespace) -> None:
    from .runtime import run_operator

    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    await run_operator(args, stop)


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    if args.command == "run":
        logs.setup(args.log_format, args.log_level)
        try:
            asyncio.run(_run(args))
        except KeyboardInterrupt:
            pass
        return 0
    return 2


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
