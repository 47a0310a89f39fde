"""The emulated Elasticsearch endpoints, in a separate process (default) or in this one.

Both front ends offer the same few calls the benchmark needs: seed jobs, trigger one, read and
clear the request log. ``kind_of`` names what a logged request was, for the per-kind counts.
"""

from __future__ import annotations

import collections
import dataclasses
import json
import subprocess
import sys
import urllib.parse
import urllib.request
from typing import Any, Iterable

from .procstat import REPO_ROOT


def kind_of(method: str, path: str) -> str:
    """``read_all``, ``read_one``, ``stop``, ``start``, ``create``, ``delete``, ``info`` or ``other``;
    on OpenSearch also ``explain`` (the second half of a read)."""
    parts = path.strip("/").split("/")
    if method == "GET" and path.strip("/") == "":
        return "info"
    if len(parts) >= 3 and parts[0] in ("_plugins", "_opendistro") and parts[1:3] == ["_rollup", "jobs"]:
        if len(parts) == 3:
            return "read_all" if method == "GET" else "other"
        if len(parts) == 4:
            return {"GET": "read_one", "PUT": "create", "DELETE": "delete"}.get(method, "other")
        if len(parts) == 5 and method == "POST":
            return {"_stop": "stop", "_start": "start"}.get(parts[4], "other")
        if len(parts) == 5 and method == "GET" and parts[4] == "_explain":
            return "explain"
        return "other"
    if len(parts) >= 3 and parts[0] == "_rollup" and parts[1] == "job":
        if len(parts) == 3:
            if method == "GET":
                return "read_all" if parts[2] in ("_all", "*") else "read_one"
            return {"PUT": "create", "DELETE": "delete"}.get(method, "other")
        if len(parts) == 4 and method == "POST":
            return {"_stop": "stop", "_start": "start"}.get(parts[3], "other")
    return "other"


def count_kinds(records: Iterable[dict]) -> dict[str, int]:
    """Counts by kind; stops are also split by answer (``stop_200``, ``stop_500``...)."""
    c: collections.Counter = collections.Counter()
    for r in records:
        k = kind_of(r["method"], r["path"])
        c[k] += 1
        if k == "stop":
            c[f"stop_{r['status']}"] += 1
            if str(r.get("query", {}).get("wait_for_completion")) == "true":
                c["stop_waiting"] += 1
    return dict(sorted(c.items()))


class Endpoints:
    urls: list[str]
    pid: int | None = None

    def seed(self, k: int, prefix: str, count: int, state: str, **timing: Any) -> list[str]:
        raise NotImplementedError

    def requests(self, k: int) -> list[dict]:
        raise NotImplementedError

    def clear(self, k: int) -> None:
        raise NotImplementedError

    def trigger(self, k: int, job_id: str) -> bool:
        raise NotImplementedError

    def states(self, k: int) -> dict[str, str]:
        raise NotImplementedError

    def close(self) -> None:
        raise NotImplementedError

    # conveniences over several endpoints
    def requests_of(self, ks: Iterable[int]) -> list[dict]:
        return [r for k in ks for r in self.requests(k)]

    def clear_all(self) -> None:
        for k in range(len(self.urls)):
            self.clear(k)


class ProcessEndpoints(Endpoints):
    """``python -m devtools.bench.emuhost``: N emulators on one loop in their own process."""

    def __init__(self, count: int, version: str = "8.17.0"):
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "devtools.bench.emuhost", "--count", str(count), "--version", version],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, cwd=REPO_ROOT,
        )
        line = self.proc.stdout.readline()
        if not line:
            raise RuntimeError("emulator host exited before it listened")
        self.urls = json.loads(line)["urls"]
        self.pid = self.proc.pid

    def _call(self, k: int, method: str, path: str, body: Any = None, query: dict | None = None) -> Any:
        url = self.urls[k] + "/_emulator" + path
        if query:
            url += "?" + urllib.parse.urlencode(query)
        data = json.dumps(body).encode() if body is not None else None
        req = urllib.request.Request(url, data=data, method=method, headers={"Content-Type": "application/json"})
        with urllib.request.urlopen(req, timeout=60) as r:
            return json.loads(r.read())

    def seed(self, k, prefix, count, state, **timing):
        return self._call(k, "POST", "/jobs", {"count": count, "prefix": prefix, "state": state, **timing})["created"]

    def requests(self, k):
        return self._call(k, "GET", "/requests")["requests"]

    def clear(self, k):
        self._call(k, "DELETE", "/requests")

    def trigger(self, k, job_id):
        return self._call(k, "POST", f"/jobs/{job_id}/_trigger")["triggered"]

    def states(self, k):
        return {i: j["state"] for i, j in self._call(k, "GET", "/jobs").items()}

    def close(self):
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


class InProcessEndpoints(Endpoints):
    """``EmulatorPool``: N emulators on one loop thread of this process."""

    def __init__(self, count: int, version: str = "8.17.0", engine: str = "elasticsearch"):
        from es_rollup_emulator import EmulatorPool

        kw = {"distribution": "opensearch", "version": "2.19.4"} if engine == "opensearch" else {"version": version, "auto_trigger": False}
        self.pool = EmulatorPool(count, **kw).start()
        self.urls = self.pool.urls

    def seed(self, k, prefix, count, state, **timing):
        return self.pool[k].seed_jobs(count, prefix, state, **timing)

    def requests(self, k):
        return [dataclasses.asdict(r) for r in self.pool[k].requests()]

    def clear(self, k):
        self.pool[k].clear_requests()

    def trigger(self, k, job_id):
        return self.pool[k].trigger(job_id)

    def states(self, k):
        return {i: self.pool[k].job_state(i) for i in self.pool[k].job_ids()}

    def close(self):
        self.pool.close()


def job_id_of(path: str) -> str:
    """The job id in a stop/start path of either engine."""
    parts = path.strip("/").split("/")
    return parts[3] if parts[0] in ("_plugins", "_opendistro") else parts[2]


def start(mode: str, count: int, version: str = "8.17.0", engine: str = "elasticsearch") -> Endpoints:
    """The endpoints; OpenSearch's dialect runs in this process only (``inproc``)."""
    if engine == "opensearch":
        return InProcessEndpoints(count, engine=engine)
    return ProcessEndpoints(count, version) if mode == "process" else InProcessEndpoints(count, version)
