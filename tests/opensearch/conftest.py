"""Helpers for the tests on the real OpenSearch node (the ``opensearch_node`` fixture is in tests/conftest.py)."""

from __future__ import annotations

import json
import time
import urllib.request

import pytest

# The operator process on the real API server (tests/integration/conftest.py): cluster, operator, and
# the hook that prints the operator's log when a test fails.
from tests.integration.conftest import cluster, installed, operator, pytest_runtest_makereport  # noqa: F401

BIG_DOCS = 20_000


def bulk(node, index: str, docs: list[dict]) -> None:
    lines = "".join(json.dumps({"index": {"_index": index}}) + "\n" + json.dumps(d) + "\n" for d in docs)
    req = urllib.request.Request(node.url + "/_bulk?refresh=true", data=lines.encode(), method="POST",
                                 headers={"Content-Type": "application/x-ndjson"})
    with urllib.request.urlopen(req, timeout=120) as resp:
        body = json.loads(resp.read())
    assert not body["errors"], str(body)[:500]


@pytest.fixture(scope="session")
def source_index(opensearch_node) -> str:
    """``os-src``: BIG_DOCS docs, one a second over ~5.5 h, three hosts (many pages at page_size 10)."""
    node = opensearch_node
    status, body = node.request("PUT", "/os-src", {
        "settings": {"number_of_shards": 1, "number_of_replicas": 0},
        "mappings": {"properties": {"ts": {"type": "date"}, "host": {"type": "keyword"}, "v": {"type": "long"}}}})
    assert status == 200, body
    t0 = int(time.time() * 1000) - 86_400_000
    for start in range(0, BIG_DOCS, 5000):
        bulk(node, "os-src", [{"ts": t0 + i * 1000, "host": f"h{i % 3}", "v": i} for i in range(start, start + 5000)])
    return "os-src"


def es_config(source: str, target: str, page_size: int = 1000) -> dict:
    """An ES-shaped job config (what job_config.config_to_es builds from spec.config)."""
    return {"index_pattern": source, "rollup_index": target, "cron": "0 */5 * * * ?", "page_size": page_size,
            "groups": {"date_histogram": {"field": "ts", "fixed_interval": "1m", "time_zone": "UTC"},
                       "terms": {"fields": ["host"]}},
            "metrics": [{"field": "v", "metrics": ["min", "max", "sum"]}], "timeout": "20s"}


def without_metadata_id(d: dict) -> dict:
    """A job document as only a client's write can change it: the plugin writes ``metadata_id`` into an
    enabled job on its first scheduled run (RollupRunner), which bumps ``_seq_no``/``_version``; every
    client write (_start, _stop, PUT) changes ``rollup.last_updated_time``, which stays compared."""
    return {k: v for k, v in d["rollup"].items() if k != "metadata_id"}
