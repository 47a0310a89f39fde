"""``rollup-operator``: the command line. ``rollup-operator run --help`` explains every flag."""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
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
    from .commands import register
    register(sub)  # export, migration-plan
    return p


async def _serve_http(host: str, port: int, controller, ready: asyncio.Event):
    from aiohttp import web
    from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

    async def metrics_view(_request):
        return web.Response(body=generate_latest(), headers={"Content-Type": CONTENT_TYPE_LATEST})

    async def readyz(_request):
        if ready.is_set() and not controller.closing:
            return web.Response(text="ok\n")
        return web.Response(status=503, text="starting\n")

    app = web.Application()
    app.router.add_get("/metrics", metrics_view)
    app.router.add_get("/readyz", readyz)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, host, port)
    await site.start()
    return runner


async def _run(args: argparse.Namespace) -> None:
    import kopf
    from prometheus_client import REGISTRY

    from .controller import Controller
    from .handlers import build_registry
    from .kube import Kube, load_config
    from .metrics_collector import JobsCollector

    if args.kubeconfig:
        os.environ["KUBECONFIG"] = args.kubeconfig
    kube = Kube(load_config(args.kubeconfig), workers=args.kube_writers)
    controller = Controller(kube, poll_interval=args.poll_interval, coalesce_window=args.coalesce_window)
    collector = JobsCollector(controller)
    REGISTRY.register(collector)
    registry = build_registry(controller)

    settings = kopf.OperatorSettings()
    settings.posting.enabled = False  # the operator posts its own, transition-only events
    settings.scanning.disabled = True  # no list/watch on CRDs or namespaces needed (least privilege)
    settings.watching.server_timeout = 300
    settings.watching.client_timeout = 330
    settings.networking.error_backoffs = [1, 2, 5, 10, 10]

    ready_kopf = asyncio.Event()
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)

    runner = None
    if args.http_port:
        runner = await _serve_http(args.http_host, args.http_port, controller, ready_kopf)

    namespaces = args.namespace
    log.info("rollup-operator starting: %s", f"namespaces {', '.join(namespaces)}" if namespaces else "all namespaces")
    try:
        await kopf.operator(
            registry=registry,
            settings=settings,
            standalone=True,  # one replica (Deployment strategy Recreate); no peering objects needed
            clusterwide=not namespaces,
            namespaces=namespaces,
            liveness_endpoint=args.liveness_endpoint,
            ready_flag=ready_kopf,
            stop_flag=stop,
        )
    finally:
        REGISTRY.unregister(collector)
        if runner is not None:
            await runner.cleanup()
        kube.close()


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    if getattr(args, "handler", None) is not None:
        from .commands import dispatch
        return dispatch(args)
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
