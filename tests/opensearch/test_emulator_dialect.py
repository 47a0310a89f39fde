"""The operator's OpenSearch dialect against the emulator's (fast, no JVM): runs, the operator's stop
wait with a page in flight, finished and failed. What the emulator answers is held to the real node
by test_emulator_vs_real.py; these tests need runs on demand, which the real scheduler cannot give."""

from __future__ import annotations

import asyncio

import pytest
from elasticsearch import AsyncElasticsearch

from rollup_operator.engine.opensearch.rollup_api import OpenSearchGateway
from rollup_operator.job.observations import Done, JobObserved, StopTimedOut

from .conftest import es_config


@pytest.fixture
def emu():
    from es_rollup_emulator import EmulatorThread

    e = EmulatorThread(distribution="opensearch", pages_per_run=None, page_s=0.02, stop_lag_s=0.5, refresh_s=1.0).start()
    yield e
    e.close()


@pytest.fixture
async def gw(emu):
    client = AsyncElasticsearch(emu.url, max_retries=0)
    try:
        yield OpenSearchGateway(client)
    finally:
        await client.close()


async def state(gw, job_id):
    seen, _ = await gw.get(job_id)
    assert isinstance(seen, JobObserved), seen
    return seen


async def test_stop_with_a_page_in_flight_waits_until_the_counters_stand_still(gw, emu):
    assert await gw.create("run", es_config("src", "tgt")) == Done()
    assert await gw.start("run") == Done()
    assert emu.trigger("run")
    await asyncio.sleep(1.5)  # running, and _explain caught up
    assert (await state(gw, "run")).stats["pages_processed"] > 0
    assert await gw.stop("run", wait=True, timeout="30s", timeout_s=30, request_timeout=10) == Done()
    frozen = await state(gw, "run")
    assert frozen.state == "stopped"
    await asyncio.sleep(1.5)
    again = await state(gw, "run")
    assert again.state == "stopped" and again.stats == frozen.stats


async def test_a_stop_shorter_than_the_explain_lag_times_out(gw, emu):
    assert await gw.create("slow", es_config("src", "tgt")) == Done()
    assert await gw.start("slow") == Done()
    emu.trigger("slow")
    await asyncio.sleep(1.2)
    assert isinstance(await gw.stop("slow", wait=True, timeout="1s", timeout_s=1.0, request_timeout=10), StopTimedOut)


async def test_finished_and_failed_are_reported(gw, emu):
    from es_rollup_emulator import EmulatorThread

    once = EmulatorThread(distribution="opensearch", pages_per_run=3, page_s=0.01, refresh_s=0.2).start()
    try:
        client = AsyncElasticsearch(once.url, max_retries=0)
        g = OpenSearchGateway(client)
        body = {"rollup": {"enabled": True, "schedule": {"interval": {"period": 1, "unit": "Minutes"}}, "source_index": "s",
                           "target_index": "t", "page_size": 10, "delay": 0, "continuous": False,
                           "dimensions": [{"date_histogram": {"source_field": "ts", "fixed_interval": "1h"}}], "metrics": []}}
        await client.transport.perform_request("PUT", "/_plugins/_rollup/jobs/once", body=body,
                                               headers={"content-type": "application/json", "accept": "application/json"})
        assert once.trigger("once")
        await asyncio.sleep(0.6)
        seen = await state(g, "once")
        assert seen.state == "finished" and seen.stats["pages_processed"] == 3
        once.fail_job("once", "failed to search [s]")
        await asyncio.sleep(0.4)
        seen = await state(g, "once")
        assert seen.state == "failed" and "failed to search [s]" in seen.reason
        assert await g.start("once") == Done()  # a failed job goes to retry: armed again
        await asyncio.sleep(0.4)
        assert (await state(g, "once")).state == "started"
        await client.close()
    finally:
        once.close()


async def test_a_cron_opensearch_cannot_run_is_refused_before_any_request(gw, emu):
    from rollup_operator.job.observations import Refused

    out = await gw.create("secs", dict(es_config("src", "tgt"), cron="*/30 * * * * ?"))
    assert isinstance(out, Refused) and out.reason == "InvalidConfig" and "seconds field is 0" in out.message
    assert emu.count("PUT") == 0


async def test_an_edited_delay_opensearch_cannot_express_is_refused_before_any_request(gw, emu):
    from rollup_operator.job.observations import Refused

    assert isinstance(await gw.create("edit", es_config("src", "tgt")), Done)
    seen = await state(gw, "edit")
    puts = emu.count("PUT")
    cfg = es_config("src", "tgt")
    cfg["groups"]["date_histogram"]["delay"] = "2w"
    out = await gw.update("edit", cfg, seen)
    assert isinstance(out, Refused) and out.reason == "InvalidSpec" and "delay '2w'" in out.message, out
    assert emu.count("PUT") == puts
