"""``run_operator``: run the operator until stopped or cancelled -- the one entry point of a run.

``await run_operator(args, stop)`` watches, reconciles and serves /metrics and /readyz until:

* ``stop`` is set (SIGTERM/SIGINT in cli.py): kopf stops its watches, the controller cancels its
  passes and syncs and lets the status writes already queued land (graceful);
* the task running it is cancelled (e.g. a leader-election wrapper that lost its Lease): every
  pass, sync, Elasticsearch call and Kubernetes write in flight is cancelled and nothing more is
  sent; the CancelledError is re-raised.

``args`` is the parsed ``rollup-operator run`` namespace (cli.py).
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import logging
import os
from typing import Any, Callable

from rollup_operator.job import retry

log = logging.getLogger("rollup_operator")


async def serve_http(host: str, port: int, is_ready: Callable[[], bool]) -> Any:
    """/metrics, /readyz (``is_ready()``) and /healthz (the event loop answers: alive), for a plain
    run and for a --leader-elect process, leader or standby, alike."""
    from aiohttp import web
    from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

    async def metrics_view(_request: web.Request) -> web.Response:
        return web.Response(body=generate_latest(), headers={"Content-Type": CONTENT_TYPE_LATEST})

    async def readyz(_request: web.Request) -> web.Response:
        if is_ready():
            return web.Response(text="ok\n")
        return web.Response(status=503, text="starting\n")

    async def healthz(_request: web.Request) -> web.Response:
        return web.Response(text="ok\n")

    app = web.Application()
    app.router.add_get("/metrics", metrics_view)
    app.router.add_get("/readyz", readyz)
    app.router.add_get("/healthz", healthz)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, host, port)
    await site.start()
    return runner


def settle_heap() -> None:
    """Keep what start-up made (modules, classes, functions: ~130k objects that live as long as the
    process) out of every later garbage collection: collect once, then ``gc.freeze()``. Before, each
    full collection during a burst walked all of it: ~160 ms stalls of the event loop, ~1 CPU-s in a
    1000-job mass stop. Frozen objects are still freed by reference counting; only a cycle among
    them would outlive its use, and start-up leaves none that matters."""
    gc.collect()
    gc.freeze()


async def run_operator(args: argparse.Namespace, stop: asyncio.Event | None = None) -> None:
    import kopf
    from prometheus_client import REGISTRY

    from rollup_operator.app.controller import Controller
    from rollup_operator.app.handlers import build_registry
    from rollup_operator.kube.client import Kube, load_config
    from rollup_operator.metrics_collector import JobsCollector

    if args.kubeconfig:
        os.environ["KUBECONFIG"] = args.kubeconfig
    kube = Kube(load_config(args.kubeconfig), workers=args.kube_writers)
    controller = Controller(kube, poll_interval=args.poll_interval, coalesce_window=args.coalesce_window)
    collector = JobsCollector(controller)
    REGISTRY.register(collector)
    registry = build_registry(controller)
    stop = stop or asyncio.Event()

    @kopf.on.cleanup(registry=registry)
    async def stopped(**_: Any) -> None:
        # Once running, kopf takes SIGTERM/SIGINT itself (the caller's handlers no longer set
        # ``stop``), then waits up to 5 s for its waiter on ``stop_flag``: set it, so the run ends
        # now and a --leader-elect wrapper waiting on ``stop`` releases the Lease at once.
        stop.set()

    settings = kopf.OperatorSettings()
    settings.posting.enabled = False  # the operator posts its own, transition-only events
    settings.scanning.disabled = True  # no list/watch on CRDs or namespaces needed (least privilege)
    settings.watching.server_timeout = 300
    settings.watching.client_timeout = 330
    settings.networking.error_backoffs = list(retry.WATCH_ERROR_BACKOFFS)

    ready_kopf = asyncio.Event()
    runner = None
    namespaces = args.namespace
    try:
        if args.http_port:
            runner = await serve_http(args.http_host, args.http_port, lambda: ready_kopf.is_set() and not controller.closing)
        settle_heap()
        log.info("rollup-operator starting: %s", f"namespaces {', '.join(namespaces)}" if namespaces else "all namespaces")
        op = asyncio.ensure_future(kopf.operator(
            registry=registry,
            settings=settings,
            standalone=True,  # no kopf peering: one process acts at a time (--leader-elect, leader.py)
            clusterwide=not namespaces,
            namespaces=namespaces,
            liveness_endpoint=args.liveness_endpoint,
            ready_flag=ready_kopf,
            stop_flag=stop,
        ))
        try:
            await asyncio.wait({op})  # a cancellation of this task arrives here, before kopf sees it
        except asyncio.CancelledError:
            # Nothing more may be written, not even by kopf's cleanup handler (controller.close
            # with drain), which kopf runs while it winds down from a cancellation.
            controller.writer.frozen = True
            op.cancel()
            await asyncio.gather(op, return_exceptions=True)
            raise
        op.result()
    except asyncio.CancelledError:
        await asyncio.shield(controller.close(drain=False))  # nothing more is sent
        raise
    finally:
        REGISTRY.unregister(collector)
        if runner is not None:
            await asyncio.shield(runner.cleanup())
        await asyncio.shield(kube.close())
