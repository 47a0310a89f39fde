"""Scenario 15: a tenant's server answers ``GET _rollup/job/_all`` with a 200 whose body never ends
(issue 20). The whole operator process (not just a client) keeps its memory: the answer is read
against the connection's ``maxResponseSize`` and dropped at the bound, the connection and its job
say ``ResponseTooLarge``, and the operator's RSS does not grow with what the server sends."""

import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from tests.integration.support import condition

from .tools import reason

pytestmark = pytest.mark.apiserver

SAMPLE_S = 15.0
RSS_GROWTH_BOUND_MIB = 24.0  # one bound (1 MiB) per request in flight, and the allocator's slack
INFO = {"name": "endless", "cluster_name": "endless", "cluster_uuid": "endless-uuid",
        "version": {"number": "8.17.0", "build_flavor": "default"}, "tagline": "You Know, for Search"}
CHUNK = (json.dumps({"config": {"id": "x" * 200}, "status": {"job_state": "stopped"}, "stats": {}}) + ",").encode() * 64


class Endless(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    sent = 0  # bytes of endless bodies sent, all requests together

    def log_message(self, *_):
        pass

    def _head(self, status: int, length: int | None = None) -> None:
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("X-Elastic-Product", "Elasticsearch")
        if length is None:
            self.send_header("Transfer-Encoding", "chunked")
        else:
            self.send_header("Content-Length", str(length))
        self.end_headers()

    def do_GET(self):
        if self.path.split("?")[0] == "/":
            body = json.dumps(INFO).encode()
            self._head(200, len(body))
            self.wfile.write(body)
            return
        self._head(200)
        try:
            self._chunk(b'{"jobs":[')
            while True:
                self._chunk(CHUNK)
                type(self).sent += len(CHUNK)
        except (BrokenPipeError, ConnectionResetError):
            self.close_connection = True

    def _chunk(self, data: bytes) -> None:
        self.wfile.write(b"%x\r\n%s\r\n" % (len(data), data))


def rss_mib(pid: int) -> float:
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    raise AssertionError("no VmRSS")


def test_an_endless_answer_does_not_grow_the_operator(cluster, operator, report):
    row = report("15. An endless 200 to GET _rollup/job/_all (maxResponseSize 1Mi), the whole operator process",
                 f"connection and job report ResponseTooLarge; the operator's RSS over {SAMPLE_S:.0f} s of repeated "
                 f"endless answers grows < {RSS_GROWTH_BOUND_MIB:.0f} MiB while the server sends far more; no Traceback")
    srv = ThreadingHTTPServer(("127.0.0.1", 0), Endless)
    srv.daemon_threads = True
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    try:
        url = f"http://127.0.0.1:{srv.server_address[1]}"
        op = operator()
        cluster.connection("es", url, syncInterval="2s", maxResponseSize="1Mi")
        cluster.job("big", "stopped", backoff={"initial": "250ms", "max": "1s"})
        conn = cluster.wait("es", lambda o: reason(o) == "ResponseTooLarge", timeout=20, what="ResponseTooLarge",
                            plural="elasticsearchconnections")
        job = cluster.wait("big", lambda o: reason(o) == "ResponseTooLarge", timeout=20, what="ResponseTooLarge")
        assert "1Mi" in condition(conn, "Reconciling")["message"] or "1048576" in condition(conn, "Reconciling")["message"], conn["status"]
        base, sent0 = rss_mib(op.proc.pid), Endless.sent
        peak, t0, thirds = base, time.time(), []
        while time.time() - t0 < SAMPLE_S:
            peak = max(peak, rss_mib(op.proc.pid))
            if time.time() - t0 >= (len(thirds) + 1) * SAMPLE_S / 3:
                thirds.append(round(peak - base, 1))  # growth so far: it levels off, it does not climb
            time.sleep(0.2)
        sent_mib = (Endless.sent - sent0) / 2 ** 20
        row.num(rss_start_mib=base, rss_peak_mib=peak, growth_mib=peak - base, growth_by_thirds_mib="/".join(map(str, thirds)),
                server_sent_mib=sent_mib)
        assert sent_mib > 3 * RSS_GROWTH_BOUND_MIB, f"the server sent only {sent_mib:.1f} MiB: the bound was not exercised"
        assert peak - base < RSS_GROWTH_BOUND_MIB, f"RSS grew {peak - base:.1f} MiB (from {base:.1f}) while {sent_mib:.0f} MiB were sent"
        assert reason(cluster.get("big")) == "ResponseTooLarge" and job["status"]["observedGeneration"] == job["metadata"]["generation"]
        assert op.alive() and "Traceback" not in op.logs()
    finally:
        srv.shutdown()
        srv.server_close()
