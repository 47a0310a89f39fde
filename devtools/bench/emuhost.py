"""Many emulated Elasticsearch endpoints in one separate process (one event loop).

``python -m devtools.bench.emuhost --count N [--version V]`` starts N emulators (no cron triggers),
prints one JSON line ``{"urls": [...]}`` and runs until SIGTERM/SIGINT or until stdin closes.
Everything else goes through each emulator's ``/_emulator`` control API (see
``emulator/es_rollup_emulator/control.py``).

The benchmark runs the emulators here rather than in its own process so that its watch stream,
its bulk writes and the emulators do not share one interpreter lock.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import signal
import sys

from es_rollup_emulator import ElasticsearchEmulator


async def serve(count: int, version: str) -> None:
    emus = [ElasticsearchEmulator(version=version, auto_trigger=False) for _ in range(count)]
    for e in emus:
        await e.start("127.0.0.1", 0)
    print(json.dumps({"urls": [e.url for e in emus]}), flush=True)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    # Die with the parent: stdin is a pipe from it.
    loop.add_reader(sys.stdin.fileno(), lambda: stop.set() if not sys.stdin.buffer.read1(4096) else None)
    try:
        await stop.wait()
    finally:
        for e in emus:
            await e.close()


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m devtools.bench.emuhost")
    p.add_argument("--count", type=int, required=True)
    p.add_argument("--version", default="8.17.0")
    args = p.parse_args(argv)
    asyncio.run(serve(args.count, args.version))
    return 0


if __name__ == "__main__":
    sys.exit(main())
