"""The HA suite's judges (test_e2e_ha.py) on made-up histories: they must flag a replica acting
without the Lease, interleaved senders and requests the wire did not see; and the wire tap
(ha_observe.WireTap) on real HTTP requests over loopback (root only: AF_PACKET)."""

from __future__ import annotations

import http.server
import os
import socket
import threading
import time
import urllib.request

import pytest

from .ha_observe import LeaseRecord, WireRequest, WireTap
from .test_e2e_ha import attribute, holder_at, interleaved, not_holding, segments


def rec(seen, holder, acquire, renew, rv):
    return LeaseRecord(seen, holder, acquire, renew, 0, str(rv))


HISTORY = [rec(10, "a", 1, 10, 1), rec(12, "a", 1, 12, 2), rec(13, "", 13, 13, 3), rec(14, "b", 14, 14, 4),
           rec(16, "b", 14, 16, 5)]


def test_segments_follow_holders_and_release():
    segs = segments(HISTORY)
    assert [(s["holder"], s["start"], s["last"], s["end"]) for s in segs] == [
        ("a", 1, 12, 13), ("", 13, 13, 14), ("b", 14, 16, float("inf"))]
    assert [holder_at(segs, t) for t in (5, 12.9, 13.5, 14, 99)] == ["a", "a", "", "b", "b"]


def test_segments_split_at_a_restart_of_the_same_holder():
    hist = [rec(10, "a", 1, 10, 1), rec(12, "a", 1, 12, 2), rec(14.5, "a", 1, 14.5, 3), rec(16, "a", 1, 16, 4)]
    assert [(s["start"], s["last"]) for s in segments(hist, restart_at=13)] == [(1, 12), (14.5, 16)]
    assert len(segments(hist)) == 1


def test_attribution_pairs_log_records_with_the_wire():
    wire = [WireRequest(11.0, "10.0.0.1", 1, "POST", "/_rollup/job/j/_stop", ""),
            WireRequest(15.0, "10.0.0.2", 2, "POST", "/_rollup/job/j/_stop", ""),
            WireRequest(15.5, "10.0.0.9", 3, "GET", "/", "")]  # not an operator Pod
    log = [{"method": "POST", "path": "/_rollup/job/j/_stop", "timestamp": 11.002},
           {"method": "POST", "path": "/_rollup/job/j/_stop", "timestamp": 15.001},
           {"method": "GET", "path": "/", "timestamp": 15.501}]
    pairs, unpaired = attribute(log, wire, {"10.0.0.1": "a", "10.0.0.2": "b"})
    assert [(p, t) for _r, p, t in pairs] == [("a", 11.0), ("b", 15.0)] and unpaired == [log[2]]
    segs = segments(HISTORY)
    assert not not_holding(pairs, segs) and interleaved(pairs) is None


def test_judges_flag_a_standby_acting_and_interleaving():
    segs = segments(HISTORY)
    early = [({"method": "GET", "path": "/"}, "a", 11), ({"method": "GET", "path": "/"}, "b", 12),
             ({"method": "GET", "path": "/"}, "a", 12.5)]
    assert [w[3] for w in not_holding(early, segs)] == ["b"]
    assert interleaved(early) == ["a", "b", "a"]
    late = [({"method": "GET", "path": "/"}, "a", 13.2)]  # after its release
    assert not_holding(late, segs) == [("GET", "/", 13.2, "a", "")]


@pytest.mark.skipif(os.geteuid() != 0, reason="AF_PACKET capture needs root")
def test_wire_tap_sees_each_request_once_with_its_source():
    srv = http.server.HTTPServer(("127.0.0.1", 0), http.server.SimpleHTTPRequestHandler)
    srv.RequestHandlerClass.log_message = lambda *a: None
    port = srv.server_address[1]
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    tap = WireTap(port)
    try:
        t0 = time.time()
        for path in ("/a%20b?x=1", "/c"):
            try:
                urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=5).read()
            except OSError:
                pass  # 404: the request is what counts
        with socket.create_connection(("127.0.0.1", port)) as s:  # not HTTP: ignored
            s.sendall(b"hello\r\n")
        deadline = time.time() + 5
        while len(tap.between(t0)) < 2 and time.time() < deadline:
            time.sleep(0.05)
        time.sleep(0.2)
        got = [(r.src, r.method, r.path, r.query) for r in tap.between(t0)]
        assert got == [("127.0.0.1", "GET", "/a b", "x=1"), ("127.0.0.1", "GET", "/c", "")], got
        assert all(t0 <= r.t <= time.time() for r in tap.between(t0))
    finally:
        tap.close()
        srv.shutdown()
