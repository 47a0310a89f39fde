"""Watch every RollupJob from a separate process and timestamp what it sees.

``python -m devtools.bench.watcher --kubeconfig PATH`` lists RollupJobs in all namespaces, prints
one line per object, then ``{"watching": rv}`` once the watch stream is open, then one line per
watch event, each stamped with ``time.monotonic()`` at receipt (CLOCK_MONOTONIC is system-wide
on Linux, so the benchmark compares it with its own clock). Lines are JSON arrays::

    [t, type, namespace, name, generation, observedGeneration, ready, reason, jobState]

``ready`` is 1 when the Ready condition is True, 0 when it is not, null when there is none.

:class:`Watch` runs this process and keeps the latest state of every job, plus, per job and
generation, the first time it was seen Ready at that generation.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import threading
import time
from typing import Callable

GROUP, VERSION, PLURAL = "rollup.esops.dev", "v1alpha1", "rollupjobs"


def _row(t: float, etype: str, obj: dict) -> list:
    meta = obj.get("metadata") or {}
    st = obj.get("status") or {}
    ready = next((c for c in st.get("conditions") or [] if c.get("type") == "Ready"), None)
    return [round(t, 4), etype, meta.get("namespace"), meta.get("name"), meta.get("generation"),
            st.get("observedGeneration"), None if ready is None else int(ready.get("status") == "True"),
            ready.get("reason") if ready else None, st.get("jobState")]


def run(kubeconfig: str) -> None:
    from kubernetes import client

    from devtools.harness.apiserver import api_client

    api = api_client(kubeconfig)
    custom = client.CustomObjectsApi(api)
    out = sys.stdout

    def emit(row) -> None:
        out.write(json.dumps(row, separators=(",", ":")) + "\n")
        out.flush()

    rv = None
    while True:
        if rv is None:
            listing = custom.list_cluster_custom_object(GROUP, VERSION, PLURAL)
            now = time.monotonic()
            for obj in listing.get("items", []):
                emit(_row(now, "LIST", obj))
            rv = listing["metadata"]["resourceVersion"]
        resp = custom.list_cluster_custom_object(
            GROUP, VERSION, PLURAL, watch=True, resource_version=rv, allow_watch_bookmarks=True,
            timeout_seconds=3600, _preload_content=False)
        emit({"watching": rv})
        buf = b""
        gone = False
        for chunk in resp.stream(1 << 16, decode_content=True):
            now = time.monotonic()
            buf += chunk
            *lines, buf = buf.split(b"\n")
            for line in lines:
                if not line.strip():
                    continue
                ev = json.loads(line)
                obj = ev.get("object") or {}
                if ev.get("type") == "ERROR":
                    gone = True
                    break
                rv = (obj.get("metadata") or {}).get("resourceVersion", rv)
                if ev.get("type") != "BOOKMARK":
                    emit(_row(now, ev["type"], obj))
            if gone:
                break
        resp.release_conn()
        if gone:
            rv = None  # 410 Gone: list again


class Watch:
    """The watcher process and the latest state it reported (thread-safe reads)."""

    def __init__(self, kubeconfig: str, cwd: str):
        self.proc = subprocess.Popen([sys.executable, "-m", "devtools.bench.watcher", "--kubeconfig", kubeconfig],
                                     stdout=subprocess.PIPE, cwd=cwd, bufsize=1 << 16)
        self.pid = self.proc.pid
        self.lock = threading.Condition()
        self.jobs: dict[tuple[str, str], list] = {}  # latest row per job
        self.first_ready: dict[tuple[str, str, int], float] = {}  # (ns, name, generation) -> t
        self.first_reason: dict[tuple[str, str, int, str], float] = {}  # (ns, name, generation, Ready reason) -> t
        self.events = 0
        self.watching = threading.Event()
        self.thread = threading.Thread(target=self._read, daemon=True, name="watch-reader")
        self.thread.start()
        if not self.watching.wait(60):
            raise RuntimeError("the watcher did not open its watch stream within 60s")

    def _read(self) -> None:
        for line in self.proc.stdout:
            row = json.loads(line)
            if isinstance(row, dict):
                self.watching.set()
                continue
            t, etype, ns, name, gen, og, ready, reason, _state = row
            with self.lock:
                self.events += 1
                key = (ns, name)
                if etype == "DELETED":
                    self.jobs.pop(key, None)
                else:
                    self.jobs[key] = row
                    if ready == 1 and og == gen:
                        self.first_ready.setdefault((ns, name, gen), t)
                    if og == gen and reason:
                        self.first_reason.setdefault((ns, name, gen, reason), t)
                self.lock.notify_all()

    def wait(self, pred: Callable[["Watch"], bool], timeout: float, what: str = "condition") -> float:
        """Block until ``pred(self)`` (called under the lock); returns time.monotonic() when it held."""
        deadline = time.monotonic() + timeout
        with self.lock:
            while not pred(self):
                left = deadline - time.monotonic()
                if left <= 0:
                    raise TimeoutError(f"timed out after {timeout:.0f}s waiting for {what}")
                self.lock.wait(min(left, 1.0))
            return time.monotonic()

    def ready_count(self, ns: str) -> int:
        """Jobs in ``ns`` whose latest status is Ready=True at their current generation (call under lock)."""
        return sum(1 for (n, _), r in self.jobs.items() if n == ns and r[6] == 1 and r[5] == r[4])

    def count(self, ns: str) -> int:
        return sum(1 for (n, _) in self.jobs if n == ns)

    def close(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m devtools.bench.watcher")
    p.add_argument("--kubeconfig", required=True)
    args = p.parse_args(argv)
    try:
        run(args.kubeconfig)
    except (KeyboardInterrupt, BrokenPipeError):
        pass
    return 0


if __name__ == "__main__":
    sys.exit(main())
