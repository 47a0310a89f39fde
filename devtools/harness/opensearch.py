"""A real single-node OpenSearch 2.19.4 with the rollup plugins, for tests.

Built by ``opensearch_build.ensure_built`` (Maven Central + the plugin's source; cached), run as
``java harness.HarnessNode HOME HOST HTTP TRANSPORT`` under ``opensearch_guard.py`` in a fresh temp
dir (a copy of the built ``home/`` plus ``data/``, ``logs/``, ``tmp/``), on free ports on 127.0.0.1
(or ``host``). The guard and the JVM both carry PR_SET_PDEATHSIG, and the guard removes the temp
dir, so a SIGKILL of the test run leaves no process and no directory behind.

    with OpenSearchNode() as node:    # builds if needed; ~5-7 s to healthy, ~510 MB RSS
        print(node.url)               # http://127.0.0.1:PORT, plain HTTP, no auth

Command line (a node until Ctrl-C)::

    python -m devtools.harness.opensearch
"""

from __future__ import annotations

import argparse
import atexit
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request
from pathlib import Path

from .apiserver import _pdeathsig
from .gobuild import Progress
from .opensearch_build import MAIN_CLASS, OpenSearchBuildError, OpenSearchToolchainMissing, ensure_built, toolchain

__all__ = ["OpenSearchNode", "OpenSearchNodeError", "OpenSearchBuildError", "OpenSearchToolchainMissing",
           "ensure_built"]

GUARD = Path(__file__).resolve().parent / "opensearch_guard.py"


class OpenSearchNodeError(RuntimeError):
    pass


def free_port(host: str = "127.0.0.1") -> int:
    with socket.socket() as s:
        s.bind((host, 0))
        return int(s.getsockname()[1])


class OpenSearchNode:
    """One OpenSearch JVM; a context manager. ``heap`` is -Xms/-Xmx (the node needs ~512m)."""

    def __init__(self, host: str = "127.0.0.1", heap: str = "512m", ready_timeout: float = 180.0,
                 keep: bool | None = None, progress: Progress | None = print) -> None:
        self.host, self.heap, self.ready_timeout = host, heap, ready_timeout
        self.keep = keep if keep is not None else os.environ.get("ROLLUP_HARNESS_KEEP") == "1"
        self.progress = progress or (lambda _m: None)
        self.proc: subprocess.Popen | None = None
        self.dir: Path | None = None
        self.port = 0
        self.start_seconds: float | None = None
        self._atexit = False

    @property
    def url(self) -> str:
        if not self.port:
            raise OpenSearchNodeError("OpenSearch node not started")
        return f"http://{self.host}:{self.port}"

    @property
    def log_path(self) -> Path:
        assert self.dir is not None
        return self.dir / "node.log"

    def log_tail(self, lines: int = 60) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except (OSError, AssertionError):
            return "(no log)"

    def rss_bytes(self) -> int:
        """Resident memory of the JVM (the guard's child)."""
        if not self.proc:
            return 0
        try:
            children = Path(f"/proc/{self.proc.pid}/task/{self.proc.pid}/children").read_text().split()
            for line in Path(f"/proc/{children[0]}/status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) * 1024
        except (OSError, IndexError):
            pass
        return 0

    def start(self) -> "OpenSearchNode":
        if self.proc and self.proc.poll() is None:
            raise OpenSearchNodeError("already running")
        java, _ = toolchain()
        built = ensure_built(self.progress)
        self.dir = Path(tempfile.mkdtemp(prefix="rollup-opensearch-"))
        home = self.dir / "home"
        shutil.copytree(built / "home", home)
        for sub in ("data", "logs", "tmp"):
            (home / sub).mkdir()
        self.port = free_port(self.host)
        transport = free_port(self.host)
        cmd = [java, f"-Xms{self.heap}", f"-Xmx{self.heap}", "-XX:+UseG1GC", f"-Djava.io.tmpdir={home / 'tmp'}",
               "-cp", f"{built / 'lib'}/*", MAIN_CLASS, str(home), self.host, str(self.port), str(transport)]
        guard = [sys.executable, str(GUARD), "-" if self.keep else str(self.dir), "--", *cmd]
        t0 = time.monotonic()
        with open(self.log_path, "ab") as log:
            self.proc = subprocess.Popen(
                guard, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, start_new_session=True,
                preexec_fn=_pdeathsig if threading.current_thread() is threading.main_thread() else None)
        if not self._atexit:
            atexit.register(self.stop)
            self._atexit = True
        try:
            self._wait_healthy(t0)
        except BaseException:
            tail = self.log_tail()
            self.stop()
            raise OpenSearchNodeError(f"OpenSearch node not healthy: see the log tail\n{tail}") from None
        self.start_seconds = time.monotonic() - t0
        return self

    def _wait_healthy(self, t0: float) -> None:
        deadline = t0 + self.ready_timeout
        while True:
            assert self.proc is not None
            if self.proc.poll() is not None:
                raise OpenSearchNodeError(f"exited with {self.proc.returncode}")
            status, body = self.request("GET", "/_cluster/health?wait_for_status=yellow&timeout=1s", timeout=3)
            if status == 200 and body.get("status") in ("yellow", "green"):
                plugins = self.request("GET", "/_cat/plugins?format=json", timeout=5)[1]
                names = {p.get("component") for p in plugins} if isinstance(plugins, list) else set()
                if {"opensearch-index-management", "opensearch-job-scheduler"} <= names:
                    return
                raise OpenSearchNodeError(f"rollup plugins not loaded: {sorted(n for n in names if n)}")
            if time.monotonic() > deadline:
                raise OpenSearchNodeError(f"not healthy after {self.ready_timeout:.0f}s")
            time.sleep(0.5)

    def request(self, method: str, path: str, body: object = None, timeout: float = 30) -> tuple[int, object]:
        """One plain HTTP request (for the harness and test set-up; the operator uses its own client)."""
        data = json.dumps(body).encode() if body is not None else None
        req = urllib.request.Request(self.url + path, data=data, method=method,
                                     headers={"Content-Type": "application/json"} if data else {})
        try:
            with urllib.request.urlopen(req, timeout=timeout) as resp:
                status, raw = resp.status, resp.read()
        except urllib.error.HTTPError as e:
            status, raw = e.code, e.read()
        except (urllib.error.URLError, OSError) as e:
            return 0, str(e)
        try:
            return status, json.loads(raw) if raw else None
        except ValueError:
            return status, raw.decode(errors="replace")

    def stop(self, timeout: float = 40.0) -> None:
        """SIGTERM the guard (it stops the JVM and removes the temp dir); SIGKILL after ``timeout``."""
        proc, self.proc = self.proc, None
        if proc and proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(timeout)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(10)
        if self.dir and not self.keep:
            shutil.rmtree(self.dir, ignore_errors=True)
            self.dir = None
        self.port = 0

    def __enter__(self) -> "OpenSearchNode":
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m devtools.harness.opensearch", description=__doc__.splitlines()[0])
    ap.add_argument("--host", default="127.0.0.1")
    args = ap.parse_args(argv)
    node = OpenSearchNode(host=args.host).start()
    print(f"# OpenSearch {node.request('GET', '/')[1]['version']['number']} at {node.url} "  # type: ignore[index]
          f"in {node.start_seconds:.1f}s; log {node.log_path}; Ctrl-C stops", flush=True)
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    try:
        while not stop.wait(0.5):
            if node.proc is None or node.proc.poll() is not None:
                print(f"the node exited; log tail:\n{node.log_tail()}", file=sys.stderr)
                return 1
    finally:
        node.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
