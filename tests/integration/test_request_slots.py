"""Request slots (issue 12 item 4): a stop that waits never starves reads and quick calls.

With ``maxConcurrentRequests: 1`` there is one request slot, so no stop may wait on the server
(it would hold the only slot for up to its timeout): the stop is sent without a wait and confirmed
by the connection's shared poll, and a start and the shared read go out meanwhile.
"""

import time

from .support import condition


def test_a_start_and_the_shared_read_are_not_delayed_by_a_stop_with_one_request_slot(cluster, emulator, operator):
    emu = emulator(auto_trigger=False)
    emu.add_job("slow", state="started", stop_delay=6.0, pages_per_run=None, page_duration=30)
    assert emu.trigger("slow") and emu.job_state("slow") == "indexing"
    emu.add_job("quick", state="stopped")
    cluster.connection("es", emu.url, syncInterval="2s", maxConcurrentRequests=1)
    cluster.job("quick", "stopped")
    cluster.job("slow", "started")
    operator()
    cluster.wait_ready("quick", timeout=30)
    cluster.wait_ready("slow", timeout=30)
    cluster.set_desired("slow", "stopped")
    cluster.wait("slow", lambda o: condition(o, "Ready").get("reason") == "Stopping", timeout=20, what="the stop in flight")
    stop_sent = time.time()
    cluster.set_desired("quick", "started")
    cluster.wait("quick", lambda o: condition(o, "Ready").get("reason") == "Started" and condition(o, "Ready").get("status") == "True",
                 timeout=10, what="the start while the slow stop is in progress")
    started_after = time.time() - stop_sent
    still_stopping = emu.job_state("slow") == "stopping"
    assert started_after < 4.0, started_after  # far less than the 6 s the stop takes
    assert still_stopping, emu.job_state("slow")
    reads = [r for r in emu.requests(method="GET") if r.path == "/_rollup/job/_all" and r.timestamp >= stop_sent]
    assert reads, "no shared read while the stop was in progress"
    cluster.wait_ready("slow", timeout=30)
    stops = [r for r in emu.requests(method="POST") if r.path == "/_rollup/job/slow/_stop"]
    assert stops and all(r.query.get("wait_for_completion") != "true" for r in stops), [r.query for r in stops]
