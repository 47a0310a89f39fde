"""The emulator driven by the official async client (elasticsearch 8.x, ``max_retries=0``)."""

from __future__ import annotations

import asyncio
import ssl
import time

import pytest
from elasticsearch import (
    ApiError, AsyncElasticsearch, AuthenticationException, AuthorizationException, BadRequestError,
    ConnectionError as ESConnectionError, ElasticsearchWarning, NotFoundError, UnsupportedProductError,
)

from es_rollup_emulator import DEPRECATION_MESSAGE, ElasticsearchEmulator

ADMIN = ("admin", "admin-pw")


def client(emu: ElasticsearchEmulator, **kw) -> AsyncElasticsearch:
    kw.setdefault("max_retries", 0)
    return AsyncElasticsearch(emu.url, **kw)


@pytest.fixture
async def emu():
    async with ElasticsearchEmulator(version="8.17.0", auto_trigger=False, page_duration=0.2) as e:
        yield e


@pytest.fixture
async def es(emu):
    c = client(emu)
    yield c
    await c.close()


async def test_product_check_passes_and_info_looks_like_elasticsearch(es, emu):
    info = await es.info()
    assert info["version"]["number"] == "8.17.0"
    assert info["version"]["build_flavor"] == "default"
    assert info["tagline"] == "You Know, for Search"
    assert {"lucene_version", "minimum_wire_compatibility_version"} <= set(info["version"])


async def test_not_elasticsearch_mode_fails_the_product_check():
    async with ElasticsearchEmulator(not_elasticsearch=True) as emu:
        c = client(emu)
        with pytest.raises(UnsupportedProductError):
            await c.info()
        await c.close()


async def test_start_of_missing_job_is_not_found(es):
    with pytest.raises(NotFoundError) as exc:
        await es.rollup.start_job(id="nope")
    assert exc.value.body["error"]["type"] == "resource_not_found_exception"
    assert exc.value.body["error"]["reason"] == "Task for Rollup Job [nope] not found"


@pytest.mark.filterwarnings("ignore::elasticsearch.ElasticsearchWarning")
@pytest.mark.parametrize("version,status", [("8.17.0", 500), ("9.1.0", 429)])
async def test_stop_slower_than_timeout_times_out_then_job_stops(version, status):
    async with ElasticsearchEmulator(version=version, auto_trigger=False, page_duration=0.4) as emu:
        emu.add_job("slow", state="indexing")
        c = client(emu)
        with pytest.raises(ApiError) as exc:
            await c.rollup.stop_job(id="slow", wait_for_completion=True, timeout="100ms")
        assert exc.value.meta.status == status
        err = exc.value.body["error"]
        assert err["type"] == "timeout_exception"
        assert err["reason"] == ("Timed out after [100ms] while waiting for rollup job [slow] to stop. "
                                 "State was [STOPPING]")
        assert emu.job_state("slow") == "stopping"
        assert await emu.wait_for_state("slow", "stopped", timeout=2)
        job = (await c.rollup.get_jobs(id="slow"))["jobs"][0]
        assert job["status"]["job_state"] == "stopped"
        assert job["stats"]["pages_processed"] == 1
        assert emu.count("POST", "/_rollup/job/slow/_stop") == 1
        await c.close()


async def test_stop_delay_sets_exact_stop_latency(emu, es):
    emu.add_job("j", state="indexing", page_duration=10, stop_delay=0.3)
    t0 = time.monotonic()
    assert (await es.rollup.stop_job(id="j", wait_for_completion=True, timeout="5s"))["stopped"] is True
    assert 0.28 <= time.monotonic() - t0 < 1.0
    assert emu.job_state("j") == "stopped"


async def test_job_runs_pages_and_returns_to_started(emu, es):
    emu.add_job("run", state="started", page_duration=0.05, pages_per_run=3, docs_per_page=7)
    assert emu.trigger("run") is True
    assert emu.job_state("run") == "indexing"
    assert await emu.wait_for_state("run", "started", timeout=2)
    job = (await es.rollup.get_jobs(id="run"))["jobs"][0]
    stats = job["stats"]
    assert stats["pages_processed"] == 3 and stats["documents_processed"] == 21 and stats["trigger_count"] == 1
    assert all(isinstance(stats[k], int) for k in stats) and len(stats) == 12
    assert "timestamp.date_histogram" in job["status"]["current_position"]


async def test_cron_fires_automatically():
    async with ElasticsearchEmulator(page_duration=0.05, pages_per_run=1) as emu:
        emu.add_job("cron", {"cron": "* * * * * ?"}, state="started")
        assert await emu.wait_for_state("cron", "indexing", timeout=2.5)
        assert emu.job_stats("cron")["trigger_count"] >= 1


async def test_deprecation_warning_on_9x():
    async with ElasticsearchEmulator(version="9.1.0", auto_trigger=False) as emu:
        emu.add_job("j")
        c = client(emu)
        with pytest.warns(ElasticsearchWarning, match="rollup functionality will be removed"):
            await c.rollup.get_jobs(id="j")
        resp = await c.options(headers={}).info()
        assert "warning" not in resp.meta.headers
        await c.close()
    assert DEPRECATION_MESSAGE.startswith("The rollup functionality")


async def test_8x_refuses_compatible_with_9_and_9x_accepts_8(emu, es):
    with pytest.raises(BadRequestError) as exc:
        await es.perform_request("GET", "/", headers={"accept": "application/vnd.elasticsearch+json; compatible-with=9"})
    err = exc.value.body["error"]
    assert err["type"] == "media_type_header_exception"
    assert err["reason"] == "Invalid media-type value on headers [Accept, Content-Type]"
    assert err["caused_by"] == {"type": "status_exception", "reason": "Accept version must be either version 8 or 7, "
                                "but found 9. Accept=application/vnd.elasticsearch+json; compatible-with=9"}
    resp = await es.info()
    assert resp.meta.headers["content-type"] == "application/vnd.elasticsearch+json;compatible-with=8"
    async with ElasticsearchEmulator(version="9.1.0") as emu9:
        c = client(emu9)
        assert (await c.info())["version"]["number"] == "9.1.0"
        await c.close()


PUT_BODY = dict(index_pattern="rollup-source", rollup_index="rollup-target", cron="*/30 * * * * ?", page_size=10,
                groups={"date_histogram": {"field": "timestamp", "fixed_interval": "1h"}},
                metrics=[{"field": "value", "metrics": ["min", "max"]}])


@pytest.mark.filterwarnings("ignore::elasticsearch.ElasticsearchWarning")
@pytest.mark.parametrize("version,refused", [("8.14.0", False), ("8.15.0", True), ("9.1.0", True)])
async def test_usage_rule_from_8_15(version, refused):
    async with ElasticsearchEmulator(version=version, auto_trigger=False) as emu:
        emu.create_index("rollup-source", {"properties": {"timestamp": {"type": "date"}, "value": {"type": "long"}}})
        c = client(emu)
        if refused:
            with pytest.raises(BadRequestError) as exc:
                await c.rollup.put_job(id="a", **PUT_BODY)
            assert exc.value.body["error"]["type"] == "illegal_argument_exception"
            assert exc.value.body["error"]["reason"] == (
                "new rollup jobs are not allowed in clusters that don't have any rollup usage, since rollup has been "
                "deprecated")
            emu.seed_rollup_usage()
        assert (await c.rollup.put_job(id="a", **PUT_BODY))["acknowledged"] is True
        # a job now exists: more jobs are fine, and the id can never be reused on this rollup index
        await c.rollup.delete_job(id="a")
        with pytest.raises(ApiError) as exc:
            await c.rollup.put_job(id="a", **PUT_BODY)
        assert exc.value.meta.status == 409
        assert exc.value.body["error"]["reason"] == (
            "Cannot create rollup job [a] because job was previously created (existing metadata).")
        await c.close()


async def test_start_of_started_job_717_is_500_but_noop_on_8x():
    async with ElasticsearchEmulator(version="7.17.25", auto_trigger=False) as emu:
        emu.add_job("j", state="started")
        c = client(emu)
        with pytest.raises(ApiError) as exc:
            await c.rollup.start_job(id="j")
        assert exc.value.meta.status == 500
        assert exc.value.body["error"]["type"] == "exception"
        assert exc.value.body["error"]["reason"] == "Cannot start task for Rollup Job [j] because state was [STARTED]"
        await c.close()
    async with ElasticsearchEmulator(version="8.17.0", auto_trigger=False) as emu:
        emu.add_job("j", state="started")
        c = client(emu)
        assert (await c.rollup.start_job(id="j"))["started"] is True
        emu.add_job("s", state="stopping", page_duration=5)
        with pytest.raises(ApiError) as exc:
            await c.rollup.start_job(id="s")
        assert exc.value.body["error"]["reason"] == "Cannot start task for Rollup Job [s] because state was [STOPPING]"
        await c.close()


async def test_delete_of_started_job_returns_task_failures(emu, es):
    emu.add_job("j", state="started")
    with pytest.raises(ApiError) as exc:
        await es.rollup.delete_job(id="j")
    assert exc.value.meta.status == 500
    body = exc.value.body
    assert body["acknowledged"] is False and "error" not in body
    failure = body["task_failures"][0]
    assert failure["status"] == "INTERNAL_SERVER_ERROR"
    assert failure["reason"] == {"type": "illegal_state_exception", "reason": "Could not delete job [j] because "
                                 "indexer state is [STARTED].  Job must be [STOPPED] before deletion."}
    with pytest.raises(NotFoundError) as exc:
        await es.rollup.delete_job(id="missing")
    assert exc.value.body["error"]["reason"] == "the task with id [missing] doesn't exist"


async def test_delete_while_waiting_reports_aborting(emu, es):
    emu.add_job("j", state="indexing", page_duration=0.2, stop_delay=5)
    waiter = asyncio.create_task(es.rollup.stop_job(id="j", wait_for_completion=True, timeout="600ms"))
    await asyncio.sleep(0.1)
    emu.oob_delete("j")
    with pytest.raises(ApiError) as exc:
        await waiter
    assert exc.value.body["error"]["reason"].endswith("State was [ABORTING]")
    assert (await es.rollup.get_jobs(id="j"))["jobs"] == []


async def test_bad_parameters(emu, es):
    emu.add_job("j")
    with pytest.raises(BadRequestError) as exc:
        await es.rollup.stop_job(id="j", timeout="abc")
    assert exc.value.body["error"]["reason"] == (
        "failed to parse setting [timeout] with value [abc] as a time value: unit is missing or unrecognized")
    with pytest.raises(BadRequestError) as exc:
        await es.perform_request("POST", "/_rollup/job/j/_stop", params={"timout": "1s"})
    assert exc.value.body["error"]["reason"] == (
        "request [/_rollup/job/j/_stop] contains unrecognized parameter: [timout] -> did you mean [timeout]?")
    with pytest.raises(ApiError) as exc:
        await es.perform_request("GET", "/_rollup/job/j/_start")
    assert exc.value.meta.status == 405
    with pytest.raises(BadRequestError) as exc:
        await es.perform_request("GET", "/_rollup/job")
    assert exc.value.body == {"error": "no handler found for uri [/_rollup/job] and method [GET]", "status": 400}
    resp = await es.rollup.get_jobs(id="_all", filter_path="jobs.config.id")
    assert resp.body == {"jobs": [{"config": {"id": "j"}}]}


async def test_security_messages_and_rotation():
    users = {"admin": ("admin-pw", ["all"]), "viewer": {"password": "v", "privileges": ["monitor_rollup"],
                                                       "roles": ["viewer"]}}
    async with ElasticsearchEmulator(users=users, api_keys={"k1": ("secret", ["manage_rollup"])},
                                     auto_trigger=False) as emu:
        emu.add_job("j", state="started")
        anon = client(emu)
        with pytest.raises(AuthenticationException) as exc:
            await anon.rollup.get_jobs(id="j")
        err = exc.value.body["error"]
        assert err["type"] == "security_exception"
        assert err["reason"] == "missing authentication credentials for REST request [/_rollup/job/j]"
        assert err["header"]["WWW-Authenticate"] == ['Basic realm="security", charset="UTF-8"', "ApiKey"]
        assert exc.value.meta.headers["www-authenticate"].startswith("Basic")
        bad = client(emu, basic_auth=("admin", "wrong"))
        with pytest.raises(AuthenticationException) as exc:
            await bad.rollup.get_jobs(id="j")
        assert exc.value.body["error"]["reason"] == "unable to authenticate user [admin] for REST request [/_rollup/job/j]"
        viewer = client(emu, basic_auth=("viewer", "v"))
        assert (await viewer.rollup.get_jobs(id="j"))["jobs"][0]["config"]["id"] == "j"
        with pytest.raises(AuthorizationException) as exc:
            await viewer.rollup.stop_job(id="j")
        assert exc.value.body["error"]["reason"] == (
            "action [cluster:admin/xpack/rollup/stop] is unauthorized for user [viewer] with effective roles [viewer], "
            "this action is granted by the cluster privileges [manage_rollup,manage,all]")
        key = client(emu, api_key=("k1", "secret"))
        assert (await key.rollup.stop_job(id="j"))["stopped"] is True
        emu.set_user_password("admin", "rotated")
        admin = client(emu, basic_auth=ADMIN)
        with pytest.raises(AuthenticationException):
            await admin.rollup.get_jobs(id="j")
        rotated = client(emu, basic_auth=("admin", "rotated"))
        assert (await rotated.rollup.get_jobs(id="j"))["jobs"]
        assert emu.requests(path="/_rollup/job/j")[-1].user == "admin"
        for c in (anon, bad, viewer, key, admin, rotated):
            await c.close()


async def test_tls_with_generated_ca():
    pytest.importorskip("trustme")
    async with ElasticsearchEmulator(tls=True) as emu:
        assert emu.url.startswith("https://") and emu.ca_pem.startswith(b"-----BEGIN CERTIFICATE")
        c = client(emu, ca_certs=emu.ca_file)
        assert (await c.info())["tagline"] == "You Know, for Search"
        await c.close()
        ctx = ssl.create_default_context(cadata=emu.ca_pem.decode())
        c2 = client(emu, ssl_context=ctx)
        assert (await c2.info())["version"]["number"] == "8.17.0"
        await c2.close()


async def test_go_down_and_come_up_on_same_port(emu, es):
    port = emu.port
    await es.info()
    await emu.go_down()
    with pytest.raises(ESConnectionError):
        await es.info()
    await emu.come_up()
    assert emu.port == port
    assert (await es.info())["tagline"] == "You Know, for Search"


async def test_restart_semantics(emu, es):
    emu.add_job("idx", state="indexing", page_duration=5)
    emu.add_job("idx2", state="indexing", page_duration=5)
    emu.add_job("stp", state="stopping", page_duration=5)
    emu.add_job("run", state="started")
    emu.set_job_timing("run", page_duration=0.01)
    emu.trigger("run")
    await asyncio.sleep(0.1)
    waiter = asyncio.create_task(es.rollup.stop_job(id="idx", wait_for_completion=True, timeout="5s"))
    await asyncio.sleep(0.1)
    await emu.restart()
    with pytest.raises(ESConnectionError):
        await waiter
    assert emu.job_state("idx") == "stopped"  # a stop in flight was persisted as STOPPED
    assert emu.job_state("idx2") == "started"
    assert emu.job_state("stp") == "stopped"
    assert emu.job_stats("run")["pages_processed"] == 0
    jobs = {j["config"]["id"]: j for j in (await es.rollup.get_jobs(id="_all"))["jobs"]}
    assert jobs["run"]["status"]["job_state"] == "started"


async def test_fail_next_and_latency(emu, es):
    emu.fail_next(2, status=503, path="/_rollup/*")
    for _ in range(2):
        with pytest.raises(ApiError) as exc:
            await es.rollup.get_jobs(id="_all")
        assert exc.value.meta.status == 503
        assert exc.value.body["error"]["type"] == "cluster_block_exception"
    assert (await es.rollup.get_jobs(id="_all"))["jobs"] == []
    emu.set_latency(0.2)
    t0 = time.monotonic()
    await es.info()
    assert time.monotonic() - t0 >= 0.19
    emu.set_latency(0)
    assert emu.count(path="/_rollup/job/_all") == 3
    emu.clear_requests()
    assert emu.count() == 0


async def test_get_all_is_fast_with_1000_jobs(emu, es):
    emu.seed_jobs(1000)
    t0 = time.monotonic()
    resp = await es.rollup.get_jobs(id="_all")
    elapsed = time.monotonic() - t0
    assert len(resp["jobs"]) == 1000
    assert elapsed < 1.0, elapsed


async def test_oob_changes_and_forced_aborting(emu, es):
    emu.add_job("j")
    emu.oob_start("j")
    assert (await es.rollup.get_jobs(id="j"))["jobs"][0]["status"]["job_state"] == "started"
    emu.force_state("j", "aborting")
    with pytest.raises(ApiError) as exc:
        await es.rollup.stop_job(id="j")
    assert exc.value.body["error"]["reason"] == "Cannot stop task for Rollup Job [j] because state was [ABORTING]"
    assert emu.count() == 2  # control calls and oob changes are not logged


async def test_poll_emulation_answers_on_the_servers_poll_grid():
    async with ElasticsearchEmulator(auto_trigger=False, poll_emulation=True) as emu:
        emu.add_job("j", state="indexing", page_duration=10, stop_delay=1.1)
        c = client(emu)
        t0 = time.monotonic()
        await c.rollup.stop_job(id="j", wait_for_completion=True, timeout="10s")
        # polls at 0, 1, 3, .., 1023 ms, then every second: a 1.1 s stop is seen at 2.023 s
        assert 1.95 <= time.monotonic() - t0 < 2.6
        await c.close()


# --- HEAD, as a real node answers it: the GET's status and headers, no body ---------------------------


async def _raw(emu: ElasticsearchEmulator, method: str, path: str) -> tuple[int, dict[str, str], bytes]:
    import aiohttp

    async with aiohttp.ClientSession() as s, s.request(method, emu.url + path) as r:
        headers = {k.lower(): v for k, v in r.headers.items() if k.lower() not in ("date", "server")}
        return r.status, headers, await r.read()


async def test_head_of_an_index_is_the_get_without_its_body(emu, es):
    emu.create_index("logs", mappings={"properties": {"ts": {"type": "date"}}})
    status, head, body = await _raw(emu, "HEAD", "/logs")
    g_status, g_head, g_body = await _raw(emu, "GET", "/logs")
    assert (status, body) == (200, b"") and g_status == 200 and g_body.startswith(b'{"logs":')
    assert head == g_head and head["content-length"] == str(len(g_body))  # GET's headers, its length
    assert head["x-elastic-product"] == "Elasticsearch"
    assert (await es.indices.exists(index="logs")).body is True


async def test_head_of_a_missing_index_is_404_without_a_body(emu, es):
    status, head, body = await _raw(emu, "HEAD", "/nope")
    g_status, g_head, g_body = await _raw(emu, "GET", "/nope")
    assert (status, body) == (404, b"") and g_status == 404 and b"index_not_found_exception" in g_body
    assert head == g_head and head["content-length"] == str(len(g_body))
    assert (await es.indices.exists(index="nope")).body is False
    emu.create_index("a")
    assert (await es.indices.exists(index="a,nope")).body is False  # every name must exist
    assert (await es.indices.exists(index="a")).body is True


async def test_head_of_the_root_and_the_log_records_every_request_with_its_client(emu, es):
    emu.create_index("logs")
    assert (await _raw(emu, "HEAD", "/"))[:3:2] == (200, b"")
    await es.indices.exists(index="logs")
    await es.indices.exists(index="nope")
    await es.info()
    got = [(r.method, r.path, r.status, r.client) for r in emu.requests()]
    assert got == [("HEAD", "/", 200, "127.0.0.1"), ("HEAD", "/logs", 200, "127.0.0.1"),
                   ("HEAD", "/nope", 404, "127.0.0.1"), ("GET", "/", 200, "127.0.0.1")]


async def test_an_emulator_fault_is_a_logged_500_not_a_dropped_request(emu, es, monkeypatch):
    async def broken(srv, ctx):
        raise KeyError("emulator bug")

    route = next(r for r in emu.rest.routes if r.pattern == ("_cluster", "health"))
    monkeypatch.setitem(route.handlers, "GET", (broken, frozenset(), False))
    with pytest.raises(ApiError) as e:
        await es.cluster.health()
    assert e.value.meta.status == 500 and e.value.body["error"]["type"] == "exception"
    assert [(r.path, r.status, r.client) for r in emu.requests()] == [("/_cluster/health", 500, "127.0.0.1")]
