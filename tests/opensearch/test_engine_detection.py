"""spec.engine on a Connection (engine/connection.py + engine/dialect.py): the engine detected from
``GET /`` (auto) or named in the spec, against the real OpenSearch node and the Elasticsearch emulator."""

from __future__ import annotations

import pytest

from rollup_operator.engine import connection
from rollup_operator.job.observations import NOT_ELASTICSEARCH, WRONG_ENGINE


def body(url: str, **spec) -> dict:
    return {"metadata": {"namespace": "ns", "name": "c", "generation": 1}, "spec": {"url": url, **spec}}


async def no_secret(namespace, name):
    return None


@pytest.fixture
def es_emulator():
    from es_rollup_emulator import EmulatorThread

    emu = EmulatorThread(version="8.17.0").start()
    yield emu
    emu.close()


async def check(url: str, **spec):
    conn = connection.build(body(url, **spec), no_secret)
    try:
        failure = await conn.ensure_client()
        return conn, failure, (await conn.reads.snapshot(0.0) if failure is None else None)
    finally:
        await conn.close()


@pytest.mark.parametrize("engine", [None, "auto", "opensearch"])
async def test_opensearch_is_used_on_the_opensearch_node(opensearch_node, engine):
    conn, failure, snap = await check(opensearch_node.url, **({"engine": engine} if engine else {}))
    assert failure is None, failure
    assert conn.engine == "opensearch" and conn.gateway.engine == "opensearch"
    assert conn.info.version == "2.19.4" and conn.info.deprecated is False
    assert snap.failure is None  # the shared read lists jobs in the OpenSearch dialect


@pytest.mark.parametrize("engine", [None, "auto", "elasticsearch"])
async def test_elasticsearch_is_used_on_elasticsearch(es_emulator, engine):
    conn, failure, snap = await check(es_emulator.url, **({"engine": engine} if engine else {}))
    assert failure is None, failure
    assert conn.engine == "elasticsearch" and conn.info.version == "8.17.0"
    assert snap.failure is None


async def test_engine_opensearch_on_elasticsearch_is_a_clear_error(es_emulator):
    conn, failure, _ = await check(es_emulator.url, engine="opensearch")
    assert failure is not None and failure.kind == WRONG_ENGINE and "spec.engine" in failure.message


async def test_engine_elasticsearch_on_opensearch_is_not_elasticsearch(opensearch_node):
    conn, failure, _ = await check(opensearch_node.url, engine="elasticsearch")
    assert failure is not None and failure.kind == NOT_ELASTICSEARCH


def test_a_bad_engine_is_an_invalid_spec():
    conn = connection.build(body("http://x:9200", engine="solr"), no_secret)
    assert conn.invalid and "spec.engine 'solr'" in conn.invalid


def test_connection_status_shows_the_engine():
    from rollup_operator.job.status import connection_status

    st = connection_status(1, None, "2.19.4", False, False, None, 3, None, "2026-01-01T00:00:00Z", engine="opensearch")
    assert st["engine"] == "opensearch" and st["conditions"][0]["message"].startswith("OpenSearch 2.19.4 is reachable")
