"""``rollup-operator``: the command line. ``rollup-operator run --help`` explains every flag."""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import signal
import sys
from typing import TYPE_CHECKING, Any, Sequence

from rollup_operator import logs

if TYPE_CHECKING:
    from rollup_operator.ha.leader import Timings

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
                     help="status writes to the Kubernetes API in flight at once (Events: a quarter of it, at least 2); "
                          "under a backlog, statuses that end a transition go first")
    le = run.add_argument_group("leader election (see docs/high-availability.md)")
    le.add_argument("--leader-elect", action="store_true",
                    help="act only while holding a coordination.k8s.io Lease; other replicas stand by")
    le.add_argument("--leader-election-namespace", metavar="NS", default=None,
                    help="namespace of the Lease (default: $POD_NAMESPACE, else the service account's, else rollup-operator-system)")
    le.add_argument("--leader-election-id", metavar="NAME", default="rollup-operator", help="name of the Lease")
    le.add_argument("--leader-election-lease-duration", type=float, default=15.0, metavar="SECONDS",
                    help="how long a standby waits, after the Lease last changed, before taking it")
    le.add_argument("--leader-election-renew-deadline", type=float, default=10.0, metavar="SECONDS",
                    help="how long the leader keeps trying to renew before it stops acting and exits")
    le.add_argument("--leader-election-retry-period", type=float, default=2.0, metavar="SECONDS",
                    help="time between renewals (leader) and between attempts (standby)")
    from rollup_operator.cli.commands import register
    register(sub)  # export, migration-plan
    return p


async def _operate(args: argparse.Namespace, stop: asyncio.Event) -> None:
    """The whole operator, through runtime.run_operator, while this replica leads. Cancelled
    (leadership lost): every call in flight is cancelled and nothing more is sent."""
    from rollup_operator.app.manager import run_operator

    await run_operator(argparse.Namespace(**{**vars(args), "http_port": 0}), stop)


async def _run(args: argparse.Namespace) -> int:
    from rollup_operator import metrics

    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    if not args.leader_elect:
        from rollup_operator.app.manager import run_operator

        metrics.LEADER.set(1)
        await run_operator(args, stop)
        return 0
    if args.kubeconfig:
        os.environ["KUBECONFIG"] = args.kubeconfig
    state: dict[str, Any] = {"elector": None}

    def is_ready() -> bool:  # leader or standby, ready to act or to take over: the Lease answers
        el = state["elector"]
        return (el is None or el.last_error is None) and not stop.is_set()

    runner = None
    if args.http_port:
        from rollup_operator.app.manager import serve_http

        runner = await serve_http(args.http_host, args.http_port, is_ready)
    try:
        return await _lead(args, stop, state)
    finally:
        if runner is not None:
            await runner.cleanup()


async def _lead(args: argparse.Namespace, stop: asyncio.Event, state: dict[str, Any]) -> int:
    from rollup_operator.kube.client import load_config
    from rollup_operator.ha.leader import Elector, lead
    from rollup_operator.ha.lease_store import KubeLeaseStore, default_identity, default_namespace

    # Import the operator now: imports block the event loop, and a second of that right after
    # acquiring would eat into the first renewal's deadline.
    from rollup_operator.app import controller  # noqa: F401
    from rollup_operator.app import handlers  # noqa: F401
    from rollup_operator import metrics_collector  # noqa: F401
    from rollup_operator.app import manager  # noqa: F401
    import kopf  # noqa: F401

    timings = _timings(args)
    identity = default_identity()
    namespace = args.leader_election_namespace or default_namespace()
    store = KubeLeaseStore(load_config(args.kubeconfig), namespace, args.leader_election_id,
                           timeout=timings.renew_deadline, identity=identity)
    log.info("leader election: identity %s, %s, lease %gs, renew deadline %gs, retry %gs", identity,
             store.describe(), timings.lease_duration, timings.renew_deadline, timings.retry_period)
    state["elector"] = elector = Elector(store, identity, timings)
    try:
        code = await lead(elector, lambda: _operate(args, stop), stop,
                          event=store.event, on_lost=lambda: _drop_everything(state))
    finally:
        if not state.get("lost"):
            await store.close()
    if code:
        # Leadership lost (or the operator failed): exit now, without waiting for tasks winding
        # down, so that nothing more is sent.
        logging.shutdown()
        os._exit(code)
    return code


def _drop_everything(state: dict[str, Any]) -> None:
    """Leadership lost: lead() has cancelled the operator task, so run_operator cancels every pass,
    sync, Elasticsearch call and Kubernetes write in flight and sends nothing more. Every other task
    but ours is cancelled too (nothing outside the operator may write), then the process exits."""
    state["lost"] = True
    me = asyncio.current_task()
    for task in asyncio.all_tasks():
        if task is not me:
            task.cancel()


def _timings(args: argparse.Namespace) -> "Timings":
    from rollup_operator.ha.leader import Timings

    return Timings(args.leader_election_lease_duration, args.leader_election_renew_deadline,
                   args.leader_election_retry_period)


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    if getattr(args, "handler", None) is not None:
        from rollup_operator.cli.commands import dispatch
        return dispatch(args)
    if args.command == "run":
        if args.leader_elect:
            try:
                _timings(args)
            except ValueError as e:
                print(f"rollup-operator: --leader-election-*: {e}", file=sys.stderr)
                return 2
        logs.setup(args.log_format, args.log_level)
        try:
            return asyncio.run(_run(args))
        except KeyboardInterrupt:
            return 0
    return 2


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
