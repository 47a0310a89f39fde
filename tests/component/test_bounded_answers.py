"""Issue 20 finding 2: every Elasticsearch answer is read with a bound, incrementally.

A real HTTP server on 127.0.0.1 answers ``GET _rollup/job/_all`` with a 200 from "Elasticsearch"
whose body goes on for far longer than the bound (streamed, no Content-Length), or declares a
Content-Length above it. The gateway must give ResponseTooLarge, and the process must not have
buffered the body (peak RSS grows by far less than the body's size).
"""

import resource

import pytest
from aiohttp import web
from elasticsearch import AsyncElasticsearch

from rollup_operator.engine import bounded_node
from rollup_operator.engine.elasticsearch.rollup_api import Gateway
from rollup_operator.job.config import InvalidSpec
from rollup_operator.job.connection_spec import DEFAULT_MAX_RESPONSE_BYTES, MAX_RESPONSE_BYTES, connection_spec_from_body

ES_HEADERS = {"X-Elastic-Product": "Elasticsearch", "Content-Type": "application/json"}
BODY_MB = 200  # streamed; the bound is 1 MiB


@pytest.fixture
async def endless_server():
    sent = {"bytes": 0}

    async def streamed(request: web.Request) -> web.StreamResponse:
        resp = web.StreamResponse(status=200, headers=ES_HEADERS)
        await resp.prepare(request)
        await resp.write(b'{"jobs":[')
        chunk = b'{"config":{"id":"x"}},' * 4096
        try:
            while sent["bytes"] < BODY_MB * 1024 * 1024:
                await resp.write(chunk)
                sent["bytes"] += len(chunk)
        except (ConnectionResetError, RuntimeError):
            return resp
        await resp.write(b'{}]}')
        return resp

    async def declared(request: web.Request) -> web.Response:
        return web.Response(status=200, headers=ES_HEADERS, body=b'{"jobs":[' + b" " * (2 * 1024 * 1024) + b"]}")

    app = web.Application()
    app.router.add_get("/_rollup/job/_all", streamed)
    app.router.add_get("/declared/_rollup/job/_all", declared)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]
    yield f"http://127.0.0.1:{port}", sent
    await runner.cleanup()


def _peak_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


async def test_an_endless_answer_is_cut_off_at_the_bound_without_buffering(endless_server):
    url, sent = endless_server
    client = AsyncElasticsearch(url, max_retries=0, request_timeout=60, node_class=bounded_node.node_class(1024 * 1024))
    before = _peak_mib()
    try:
        out = await Gateway(client).list_jobs()
    finally:
        await client.close()
    grown = _peak_mib() - before
    print(f"peak RSS grew {grown:.1f} MiB; the server had sent {sent['bytes'] / 2**20:.1f} MiB when the client hung up")
    assert getattr(out, "kind", None) == "ResponseTooLarge", out
    assert "spec.maxResponseSize (1048576 bytes)" in out.message
    assert grown < 40, f"peak RSS grew {grown:.1f} MiB: the answer was buffered"
    assert sent["bytes"] < BODY_MB * 1024 * 1024  # the client stopped reading long before the end


async def test_a_declared_length_over_the_bound_is_refused(endless_server):
    url, _ = endless_server
    client = AsyncElasticsearch(url + "/declared", max_retries=0, node_class=bounded_node.node_class(1024 * 1024))
    try:
        out = await Gateway(client).list_jobs()
    finally:
        await client.close()
    assert getattr(out, "kind", None) == "ResponseTooLarge", out


async def test_an_answer_within_the_bound_is_read(endless_server):
    url, _ = endless_server
    client = AsyncElasticsearch(url + "/declared", max_retries=0, node_class=bounded_node.node_class(4 * 1024 * 1024))
    try:
        out = await Gateway(client).list_jobs()
    finally:
        await client.close()
    assert out == {}, out


def _conn(**spec):
    return {"metadata": {"name": "c", "namespace": "t"}, "spec": {"url": "https://es:9200", **spec}}


def test_max_response_size_default_setting_and_ceiling():
    assert connection_spec_from_body(_conn()).max_response_bytes == DEFAULT_MAX_RESPONSE_BYTES
    assert connection_spec_from_body(_conn(maxResponseSize="512Ki")).max_response_bytes == 512 * 1024
    assert connection_spec_from_body(_conn(maxResponseSize="256Mi")).max_response_bytes == MAX_RESPONSE_BYTES
    for bad in ("257Mi", "1Gi", "0Mi", "lots"):
        with pytest.raises(InvalidSpec, match="spec.maxResponseSize"):
            connection_spec_from_body(_conn(maxResponseSize=bad))


def test_request_timeout_has_a_ceiling():
    assert connection_spec_from_body(_conn(requestTimeout="5m")).request_timeout_s == 300
    with pytest.raises(InvalidSpec, match="spec.requestTimeout must be at most 5m"):
        connection_spec_from_body(_conn(requestTimeout="1h"))
