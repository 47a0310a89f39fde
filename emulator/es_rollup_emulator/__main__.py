"""``python -m es_rollup_emulator`` / ``es-rollup-emulator``: run the emulator standalone.

Examples::

    es-rollup-emulator --port 9200 --version 8.17.0 --seed-jobs 100 --page-duration 4
    es-rollup-emulator --user admin:secret:all --user bob:pw:monitor_rollup --tls --cert-dir /tmp/certs
    es-rollup-emulator --api-key key1:s3cr3t:manage_rollup

It prints one line ``es-rollup-emulator listening on <url>`` (and ``ca <path>`` with TLS) and runs
until SIGINT/SIGTERM. Drive faults through the ``/_emulator`` control API.
"""

from __future__ import annotations

import argparse
import asyncio
import signal
import sys
from typing import Sequence

from .emulator import ElasticsearchEmulator


def _user(text: str) -> tuple[str, tuple[str, list[str]]]:
    try:
        name, password, privs = text.split(":", 2)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected NAME:PASSWORD:PRIV1,PRIV2, got {text!r}") from None
    return name, (password, [p for p in privs.split(",") if p])


def _optional_int(text: str) -> int | None:
    return None if text.lower() in ("none", "endless", "0") else int(text)


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="es-rollup-emulator", description="Elasticsearch rollup API emulator")
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=9200, help="0 picks a free port")
    p.add_argument("--version", default="8.17.0", help="Elasticsearch version profile (7.17.x, 8.x, 9.x)")
    p.add_argument("--user", action="append", type=_user, default=[], metavar="NAME:PASSWORD:PRIVS",
                   help="enable security with this user (repeatable); PRIVS comma-separated cluster privileges")
    p.add_argument("--api-key", action="append", type=_user, default=[], metavar="ID:KEY:PRIVS",
                   help="an API key (repeatable)")
    p.add_argument("--tls", action="store_true", help="serve HTTPS with a generated CA (needs trustme)")
    p.add_argument("--cert-dir", help="where to write ca.pem and server.pem (default: a temp dir)")
    p.add_argument("--seed-jobs", type=int, default=0, help="create N stopped jobs job-0000..")
    p.add_argument("--seed-state", default="stopped", choices=["stopped", "started", "indexing"])
    p.add_argument("--seed-rollup-usage", action="store_true", help="create an index with _meta._rollup")
    p.add_argument("--page-duration", type=float, default=1.0, help="seconds per indexing page")
    p.add_argument("--docs-per-page", type=int, default=100)
    p.add_argument("--pages-per-run", type=_optional_int, default=3, help="pages per run; 'none' = endless")
    p.add_argument("--stop-delay", type=float, default=None, help="exact seconds a stop stays 'stopping'")
    p.add_argument("--latency", type=float, default=0.0, help="seconds added to every response")
    p.add_argument("--no-auto-trigger", action="store_true", help="never fire crons; use the control API")
    p.add_argument("--poll-emulation", action="store_true",
                   help="answer stop waits at the instants the real server's polling would")
    p.add_argument("--not-elasticsearch", action="store_true", help="omit X-Elastic-Product (negative tests)")
    p.add_argument("--cluster-name", default="elasticsearch")
    p.add_argument("--distribution", choices=["elasticsearch", "opensearch"], default="elasticsearch",
                   help="opensearch: the OpenSearch rollup dialect (index-management; use --version 2.19.4)")
    return p


async def _serve_opensearch(args: argparse.Namespace) -> None:
    from .opensearch_http import OpenSearchEmulator

    version = args.version if not args.version.startswith("8.") else "2.19.4"
    emu = await OpenSearchEmulator(version=version, cluster_name=args.cluster_name).start(args.host, args.port)
    print(f"es-rollup-emulator listening on {emu.url} (OpenSearch {emu.version})", flush=True)
    stop = asyncio.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        asyncio.get_running_loop().add_signal_handler(sig, stop.set)
    try:
        await stop.wait()
    finally:
        await emu.close()


async def _serve(args: argparse.Namespace) -> None:
    if args.distribution == "opensearch":
        return await _serve_opensearch(args)
    emu = ElasticsearchEmulator(
        version=args.version, users=dict(args.user) or None, api_keys=dict(args.api_key) or None, tls=args.tls,
        cert_dir=args.cert_dir, auto_trigger=not args.no_auto_trigger, page_duration=args.page_duration,
        docs_per_page=args.docs_per_page, pages_per_run=args.pages_per_run, stop_delay=args.stop_delay,
        latency=args.latency, not_elasticsearch=args.not_elasticsearch, poll_emulation=args.poll_emulation,
        cluster_name=args.cluster_name,
    )
    await emu.start(args.host, args.port)
    if args.seed_rollup_usage:
        emu.seed_rollup_usage()
    if args.seed_jobs:
        emu.seed_jobs(args.seed_jobs, state=args.seed_state)
    print(f"es-rollup-emulator listening on {emu.url} (Elasticsearch {emu.version})", flush=True)
    if emu.ca_file:
        print(f"ca {emu.ca_file}", flush=True)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        try:
            loop.add_signal_handler(sig, stop.set)
        except (NotImplementedError, RuntimeError):  # pragma: no cover - non-main thread / Windows
            pass
    try:
        await stop.wait()
    finally:
        await emu.close()


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        asyncio.run(_serve(args))
    except KeyboardInterrupt:  # pragma: no cover
        pass
    return 0


if __name__ == "__main__":
    sys.exit(main())
