"""The OpenSearch dialect (rollup_operator.engine.opensearch.rollup_api) against the real OpenSearch node."""

from __future__ import annotations

import time

import pytest
from elasticsearch import AsyncElasticsearch

from rollup_operator.engine.opensearch import responses as osa
from rollup_operator.job.config import config_differences
from rollup_operator.job.observations import Done, Failure, JobAbsent, JobObserved, Refused, StopTimedOut
from rollup_operator.engine.opensearch.rollup_api import OpenSearchGateway

from .conftest import es_config


@pytest.fixture
async def gw(opensearch_node):
    client = AsyncElasticsearch(opensearch_node.url, max_retries=0, retry_on_timeout=False)
    try:
        yield OpenSearchGateway(client)
    finally:
        await client.close()


def explain(node, job_id: str) -> dict:
    status, body = node.request("GET", f"/_plugins/_rollup/jobs/{job_id}/_explain")
    assert status == 200, body
    return (body.get(job_id) or {}).get("rollup_metadata") or {}


async def test_info_is_opensearch(gw):
    info = await gw.info()
    assert info["version"]["distribution"] == "opensearch" and info["version"]["number"] == "2.19.4"


async def test_missing_job_is_absent_for_every_call(gw, opensearch_node):
    for out in (await gw.stop("gw-missing", wait=True, timeout="5s", timeout_s=5, request_timeout=10),
                await gw.start("gw-missing"), await gw.delete("gw-missing"), (await gw.get("gw-missing"))[0]):
        assert isinstance(out, JobAbsent), out
    jobs = await gw.list_jobs()
    assert "gw-missing" not in jobs


async def test_create_read_back_equal_update_guarded_delete(gw, opensearch_node, source_index):
    cfg = es_config(source_index, "os-tgt-crud")
    assert await gw.create("gw-crud", cfg) == Done()
    assert isinstance(await gw.create("gw-crud", cfg), Refused)  # an existing id: 409, never overwritten
    seen, doc = await gw.get("gw-crud")
    assert isinstance(seen, JobObserved) and seen.state == "stopped"
    assert config_differences(cfg, seen.config) == []  # what drift and ConfigConflict compare
    listed = await gw.list_jobs()
    assert isinstance(listed["gw-crud"], JobObserved) and config_differences(cfg, listed["gw-crud"].config) == []
    changed = dict(cfg, page_size=500)
    assert seen.seq == (doc["_seq_no"], doc["_primary_term"]) and listed["gw-crud"].seq == seen.seq
    stale = await gw.update("gw-crud", changed, JobObserved("stopped", seq=(doc["_seq_no"] + 1000, doc["_primary_term"])))
    assert isinstance(stale, Failure) and stale.transient and "409" in stale.message  # moved since read: read again
    assert await gw.update("gw-crud", changed, seen) == Done()
    seen, _ = await gw.get("gw-crud")
    assert config_differences(changed, seen.config) == [] and seen.state == "stopped"
    immutable = await gw.update("gw-crud", dict(changed, rollup_index="os-tgt-other"), seen)
    assert isinstance(immutable, Refused) and "Not allowed to modify [target_index]" in immutable.message
    assert await gw.delete("gw-crud") == Done()
    assert isinstance((await gw.get("gw-crud"))[0], JobAbsent)
    assert isinstance(await gw.delete("gw-crud"), JobAbsent)


async def test_start_then_stop_of_a_never_run_job_and_of_a_stopped_one(gw, source_index):
    assert await gw.create("gw-ss", es_config(source_index, "os-tgt-ss")) == Done()
    assert await gw.start("gw-ss") == Done()
    assert (await gw.get("gw-ss"))[0].state == "started"
    t0 = time.monotonic()
    assert await gw.stop("gw-ss", wait=True, timeout="30s", timeout_s=30, request_timeout=10) == Done()
    assert time.monotonic() - t0 >= gw.explain_lag_s  # the operator's wait, not the server's
    assert (await gw.get("gw-ss"))[0].state == "stopped"
    assert await gw.stop("gw-ss", wait=True, timeout="30s", timeout_s=30, request_timeout=10) == Done()
    assert await gw.delete("gw-ss") == Done()


async def test_stop_with_a_page_in_flight_ends_stopped_with_counters_frozen(gw, opensearch_node, source_index):
    node = opensearch_node
    # An interval schedule whose start lies 57 s back: the job-scheduler fires it in ~3 s, not 60.
    status, body = node.request("PUT", "/_plugins/_rollup/jobs/gw-run", {"rollup": {
        "enabled": True, "schedule": {"interval": {"period": 1, "unit": "Minutes",
                                                   "start_time": int(time.time() * 1000) - 57_000}},
        "description": "page in flight", "source_index": source_index, "target_index": "os-tgt-run",
        "page_size": 10, "delay": 0, "continuous": False,
        "dimensions": [{"date_histogram": {"source_field": "ts", "fixed_interval": "1m", "timezone": "UTC"}},
                       {"terms": {"source_field": "host"}}],
        "metrics": [{"source_field": "v", "metrics": [{"sum": {}}]}]}})
    assert status == 201, body
    deadline = time.monotonic() + 150
    while time.monotonic() < deadline:
        md = explain(node, "gw-run")
        if md.get("status") == "started" and md["stats"]["pages_processed"] > 0:
            break
        time.sleep(0.3)
    else:
        pytest.fail(f"the job never ran: {md}")
    out = await gw.stop("gw-run", wait=True, timeout="60s", timeout_s=60, request_timeout=10)
    assert out == Done(), out
    seen, _ = await gw.get("gw-run")
    assert seen.state == "stopped"
    frozen = seen.stats
    assert frozen["pages_processed"] > 0
    time.sleep(3)
    again, _ = await gw.get("gw-run")
    assert again.state == "stopped" and again.stats == frozen
    assert await gw.delete("gw-run") == Done()


async def test_a_short_stop_timeout_is_a_stop_timeout(gw, source_index):
    assert await gw.create("gw-to", es_config(source_index, "os-tgt-to")) == Done()
    assert await gw.start("gw-to") == Done()
    out = await gw.stop("gw-to", wait=True, timeout="1s", timeout_s=1.0, request_timeout=10)
    assert isinstance(out, StopTimedOut)  # under explain's lag and the settle time: retried by the job layer
    assert await gw.stop("gw-to", wait=True, timeout="30s", timeout_s=30, request_timeout=10) == Done()
    assert await gw.delete("gw-to") == Done()


def test_explain_of_a_missing_job_is_null(opensearch_node):
    status, body = opensearch_node.request("GET", "/_plugins/_rollup/jobs/gw-none/_explain")
    assert (status, body) == (200, {"gw-none": None})
    assert osa.observe("gw-none", {"rollup": {"enabled": False}}, body["gw-none"]).state == "stopped"
