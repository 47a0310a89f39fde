"""The emulator's APIs for a migration to downsampling, through the official client, each test citing
the Elasticsearch documentation page whose behaviour it checks (issue 22)."""

from __future__ import annotations

import time

import elasticsearch
import pytest
from elasticsearch import Elasticsearch

from es_rollup_emulator import EmulatorThread

DIMS = {"host": {"type": "keyword", "time_series_dimension": True}}
TEMPLATE = {
    "index_patterns": ["metrics-x"], "data_stream": {}, "priority": 300,
    "template": {"settings": {"index.mode": "time_series", "index.routing_path": ["host"], "index.lifecycle.name": "p"},
                 "mappings": {"properties": {**DIMS, "cpu": {"type": "double", "time_series_metric": "gauge"},
                                             "bytes_total": {"type": "long", "time_series_metric": "counter"}}}},
}
POLICY = {"phases": {"hot": {"actions": {"rollover": {"max_age": "1d"}}},
                     "warm": {"min_age": "1d", "actions": {"downsample": {"fixed_interval": "10m"}}}}}
IV = 600_000


@pytest.fixture
def emu(loop_thread):
    e = EmulatorThread(version="8.17.0", auto_trigger=False, loop_thread=loop_thread)
    e.start()
    yield e
    e.close()


@pytest.fixture
def es(emu):
    return Elasticsearch(emu.url, max_retries=0)


def base_ms() -> int:
    return (int(time.time() * 1000) - 80 * 60_000) // IV * IV


def docs(start: int) -> list[dict]:
    return [{"@timestamp": start + i * 60_000, "host": h, "cpu": float(i + (10 if h == "b" else 0)), "bytes_total": 100 + i}
            for h in ("a", "b") for i in range(30)]  # 3 x 10m intervals per host


def make_stream(es) -> None:
    es.ilm.put_lifecycle(name="p", policy=POLICY)
    es.indices.put_index_template(name="t", body=TEMPLATE)
    es.indices.create_data_stream(name="metrics-x")


# https://www.elastic.co/guide/en/elasticsearch/reference/current/indices-simulate-template.html
def test_simulate_template_resolves_settings_and_mappings_and_names_the_overlapping(es):
    es.indices.put_index_template(name="low", index_patterns=["metrics-*"], data_stream={}, priority=100)
    got = es.indices.simulate_template(body=TEMPLATE).body
    assert got["template"]["settings"]["index"]["mode"] == "time_series"
    assert got["template"]["mappings"]["properties"]["host"]["time_series_dimension"] is True
    assert got["overlapping"] == [{"name": "low", "index_patterns": ["metrics-*"]}]
    assert [t["name"] for t in es.indices.get_index_template(name="*").body["index_templates"]] == ["low"]  # nothing stored
    with pytest.raises(elasticsearch.BadRequestError) as e:
        es.indices.simulate_template(body={**TEMPLATE, "priority": 100, "index_patterns": ["metrics-*"]})
    assert "same priority" in str(e.value)


# https://www.elastic.co/guide/en/elasticsearch/reference/current/ilm-downsample.html
def test_a_downsample_action_needs_fixed_interval_and_in_hot_a_rollover(es):
    with pytest.raises(elasticsearch.BadRequestError):
        es.ilm.put_lifecycle(name="bad", policy={"phases": {"warm": {"actions": {"downsample": {}}}}})
    with pytest.raises(elasticsearch.BadRequestError) as e:
        es.ilm.put_lifecycle(name="bad", policy={"phases": {"hot": {"actions": {"downsample": {"fixed_interval": "1h"}}}}})
    assert "rollover" in str(e.value)
    es.ilm.put_lifecycle(name="ok", policy=POLICY)
    got = es.ilm.get_lifecycle(name="ok").body["ok"]
    assert got["version"] == 1 and got["policy"] == POLICY and got["in_use_by"]["indices"] == []


# https://www.elastic.co/guide/en/elasticsearch/reference/current/ilm-delete-lifecycle.html
def test_a_policy_in_use_cannot_be_deleted(es):
    make_stream(es)
    with pytest.raises(elasticsearch.BadRequestError) as e:
        es.ilm.delete_lifecycle(name="p")
    assert "in use" in str(e.value)


# https://www.elastic.co/guide/en/elasticsearch/reference/current/tsds.html (time-bound indices) and
# https://www.elastic.co/guide/en/elasticsearch/reference/current/indices-rollover-index.html
def test_time_series_documents_go_by_timestamp_and_rollover_takes_the_new_template(emu, es):
    make_stream(es)
    first = es.indices.get_data_stream(name="metrics-x").body["data_streams"][0]["indices"][0]["index_name"]
    with pytest.raises(elasticsearch.BadRequestError) as e:
        es.index(index="metrics-x", document={"@timestamp": int(time.time() * 1000) - 5 * 3600_000, "host": "a", "cpu": 1.0})
    assert "outside of ranges" in str(e.value)
    r = es.indices.rollover(alias="metrics-x").body
    assert r["old_index"] == first and r["rolled_over"] is True and r["new_index"].endswith("-000002")
    settings = es.indices.get(index=r["new_index"]).body[r["new_index"]]["settings"]["index"]
    assert settings["mode"] == "time_series" and settings["lifecycle"]["name"] == "p"
    old = es.indices.get(index=first).body[first]["settings"]["index"]["time_series"]
    assert settings["time_series"]["start_time"] == old["end_time"]  # the next range starts where the last ended


# https://www.elastic.co/guide/en/elasticsearch/reference/current/downsampling-ilm.html and
# https://www.elastic.co/guide/en/elasticsearch/reference/current/downsampling.html
def test_ilm_downsamples_after_rollover_min_age_and_end_time(emu, es):
    make_stream(es)
    emu.index_docs("metrics-x", docs(base_ms()))
    assert emu.run_ilm("0ms") == []  # the write index is younger than max_age
    steps = emu.run_ilm("2d")
    assert [s["step"] for s in steps] == ["rollover", "downsample"]
    ds = es.indices.get_data_stream(name="metrics-x").body["data_streams"][0]
    down = ds["indices"][0]["index_name"]
    assert down.startswith("downsample-.ds-metrics-x-") and len(ds["indices"]) == 2
    ix = es.indices.get(index=down).body[down]
    assert ix["settings"]["index"]["downsample"]["status"] == "success"
    assert ix["mappings"]["properties"]["cpu"]["type"] == "aggregate_metric_double"
    rows = emu.documents(down)
    assert len(rows) == 6  # one per host and 10m interval
    a0 = min((r for r in rows if r["host"] == "a"), key=lambda r: r["@timestamp"])
    assert a0["@timestamp"] == time.strftime("%Y-%m-%dT%H:%M:%S.000Z", time.gmtime(base_ms() // 1000))  # the interval's start
    assert a0["cpu"] == {"min": 0.0, "max": 9.0, "sum": 45.0, "value_count": 10} and a0["_doc_count"] == 10
    assert a0["bytes_total"] == 109  # a counter keeps its last value


# https://www.elastic.co/guide/en/elasticsearch/reference/current/aggregate-metric-double.html and
# https://www.elastic.co/guide/en/elasticsearch/reference/current/mapping-doc-count-field.html
def test_aggregations_over_downsampled_data_equal_those_over_the_raw_data(emu, es):
    make_stream(es)
    emu.index_docs("metrics-x", docs(base_ms()))
    aggs = {"t": {"date_histogram": {"field": "@timestamp", "fixed_interval": "10m", "min_doc_count": 1},
                  "aggs": {"h": {"terms": {"field": "host"}, "aggs": {k: {k: {"field": "cpu"}} for k in
                                                                      ("min", "max", "sum", "avg", "value_count")}}}}}
    raw = es.search(index="metrics-x", size=0, aggregations=aggs).body
    emu.run_ilm("2d")
    down = es.search(index="metrics-x", size=0, aggregations=aggs).body
    assert raw["aggregations"] == down["aggregations"]
    assert raw["hits"]["total"]["value"] == 60 and down["hits"]["total"]["value"] == 6  # hits count documents
    b = down["aggregations"]["t"]["buckets"][0]
    assert b["doc_count"] == 20 and b["h"]["buckets"][0]["avg"]["value"] == pytest.approx(b["h"]["buckets"][0]["sum"]["value"] / 10)


# https://www.elastic.co/guide/en/elasticsearch/reference/current/search-aggregations-bucket-datehistogram-aggregation.html
def test_date_histogram_fills_empty_buckets_by_default(emu, es):
    es.indices.create(index="plain", mappings={"properties": {"@timestamp": {"type": "date"}}})
    emu.index_docs("plain", [{"@timestamp": 0}, {"@timestamp": 3 * IV}])
    got = es.search(index="plain", size=0, aggregations={"t": {"date_histogram": {"field": "@timestamp", "fixed_interval": "10m"}}})
    assert [b["doc_count"] for b in got.body["aggregations"]["t"]["buckets"]] == [1, 0, 0, 1]


# https://www.elastic.co/guide/en/elasticsearch/reference/current/rollup-search.html and
# https://www.elastic.co/guide/en/elasticsearch/reference/current/rollup-search-limitations.html
def test_rollup_search_answers_from_the_rollup_documents_and_refuses_what_the_job_lacks(emu, es):
    emu.create_index("src", {"properties": {"@timestamp": {"type": "date"}, "host": {"type": "keyword"}, "cpu": {"type": "double"}}})
    emu.add_job("j", {"index_pattern": "src", "rollup_index": "r",
                      "groups": {"date_histogram": {"field": "@timestamp", "fixed_interval": "5m"}, "terms": {"fields": ["host"]}},
                      "metrics": [{"field": "cpu", "metrics": ["max", "sum", "value_count", "avg"]}]})
    start = base_ms()
    emu.index_docs("src", docs(start))
    assert emu.rollup_now("j") == 12  # 6 five-minute intervals x 2 hosts
    late = {"@timestamp": start + 60_000, "host": "a", "cpu": 500.0}
    emu.index_docs("src", [late])
    assert emu.rollup_now("j") == 0  # behind the checkpoint: never rolled up
    aggs = {"t": {"date_histogram": {"field": "@timestamp", "fixed_interval": "10m"},
                  "aggs": {"h": {"terms": {"field": "host"}, "aggs": {"mx": {"max": {"field": "cpu"}}, "av": {"avg": {"field": "cpu"}}}}}}}
    got = es.rollup.rollup_search(index="r", size=0, aggregations=aggs).body
    a0 = next(b for b in got["aggregations"]["t"]["buckets"][0]["h"]["buckets"] if b["key"] == "a")
    assert a0["doc_count"] == 10 and a0["mx"]["value"] == 9.0 and a0["av"]["value"] == pytest.approx(4.5)
    with pytest.raises(elasticsearch.BadRequestError) as e:
        es.rollup.rollup_search(index="r", size=0, aggregations={"m": {"min": {"field": "cpu"}}})
    assert "There is not a [min] agg with name [cpu]" in str(e.value)
    with pytest.raises(elasticsearch.BadRequestError) as e:
        es.rollup.rollup_search(index="r", size=0, aggregations={"t": {"date_histogram": {"field": "@timestamp", "fixed_interval": "7m"}}})
    assert "date_histogram" in str(e.value)
    with pytest.raises(elasticsearch.BadRequestError) as e:
        es.rollup.rollup_search(index="r", size=5, aggregations=aggs)
    assert "size: 0" in str(e.value)
    with pytest.raises(elasticsearch.BadRequestError):
        es.rollup.rollup_search(index="src", size=0, aggregations=aggs)  # no rollup index named


def test_the_control_api_drives_a_migration_from_another_process(emu, es):
    import json
    import urllib.request

    def post(path, body):
        req = urllib.request.Request(f"{emu.url}/_emulator/{path}", data=json.dumps(body).encode(), method="POST",
                                     headers={"Content-Type": "application/json"})
        with urllib.request.urlopen(req) as r:
            return json.loads(r.read())

    make_stream(es)
    assert set(post("docs/metrics-x", {"docs": docs(base_ms())})["indices"]) == {
        es.indices.get_data_stream(name="metrics-x").body["data_streams"][0]["indices"][0]["index_name"]}
    assert [s["step"] for s in post("ilm/_run", {"advance": "2d"})["steps"]] == ["rollover", "downsample"]
    emu.create_index("src", {"properties": {"@timestamp": {"type": "date"}, "cpu": {"type": "double"}}})
    emu.add_job("j", {"index_pattern": "src", "rollup_index": "r",
                      "groups": {"date_histogram": {"field": "@timestamp", "fixed_interval": "5m"}},
                      "metrics": [{"field": "cpu", "metrics": ["max"]}]})
    post("docs/src", {"docs": [{"@timestamp": base_ms(), "cpu": 1.0}]})
    assert post("jobs/j/_rollup_now", {}) == {"documents": 1}
