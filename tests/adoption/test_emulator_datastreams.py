"""The emulator's composable templates and data streams, through the official client, answer as
Elasticsearch does (shapes per elasticsearch-specification; the response type itself is checked
with tsc in test_request_types.py)."""

from __future__ import annotations

import warnings

import pytest
from elasticsearch import BadRequestError, Elasticsearch, NotFoundError

from es_rollup_emulator import EmulatorThread
from es_rollup_emulator.seed_migration import TSDS_TEMPLATE


@pytest.fixture
def es():
    with EmulatorThread(version="8.17.0", auto_trigger=False) as emu:
        emu.seed_rollup_usage()
        client = Elasticsearch(emu.url, max_retries=0)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            yield client


def test_tsds_from_a_template(es):
    assert es.indices.put_index_template(name="sensor", **TSDS_TEMPLATE).body == {"acknowledged": True}
    assert es.indices.create_data_stream(name="metrics-sensor").body == {"acknowledged": True}
    ds = es.indices.get_data_stream(name="metrics-sensor").body["data_streams"]
    assert len(ds) == 1 and ds[0]["name"] == "metrics-sensor" and ds[0]["index_mode"] == "time_series"
    assert ds[0]["timestamp_field"] == {"name": "@timestamp"} and ds[0]["template"] == "sensor"
    assert ds[0]["time_series"]["temporal_ranges"][0]["start"] < ds[0]["time_series"]["temporal_ranges"][0]["end"]
    backing = ds[0]["indices"][0]["index_name"]
    assert backing.startswith(".ds-metrics-sensor-") and backing.endswith("-000001")
    got = es.indices.get(index="metrics-sensor").body
    assert list(got) == [backing]
    assert got[backing]["settings"]["index"]["mode"] == "time_series"
    assert got[backing]["mappings"]["properties"]["host"]["time_series_dimension"] is True
    assert es.indices.get_data_stream(name="metrics-*").body["data_streams"][0]["name"] == "metrics-sensor"
    assert es.indices.get_data_stream(name="nothing-*").body == {"data_streams": []}
    assert [t["name"] for t in es.indices.get_index_template(name="sensor").body["index_templates"]] == ["sensor"]


def test_errors(es):
    with pytest.raises(NotFoundError) as e:
        es.indices.get_data_stream(name="nope")
    assert e.value.body["error"]["type"] == "index_not_found_exception" and e.value.body["error"]["reason"] == "no such index [nope]"
    with pytest.raises(BadRequestError, match="no matching index template found for data stream \\[orphan\\]"):
        es.indices.create_data_stream(name="orphan")
    es.indices.put_index_template(name="plain", index_patterns=["plain-*"], template={})
    with pytest.raises(BadRequestError, match="no matching index template"):
        es.indices.create_data_stream(name="plain-x")  # a template without data_stream


def test_a_rollup_job_over_a_data_stream_validates_against_its_mappings(es):
    es.indices.put_index_template(name="sensor", **TSDS_TEMPLATE)
    es.indices.create_data_stream(name="metrics-sensor")
    body = {"index_pattern": "metrics-sensor", "rollup_index": "r", "cron": "* * * * * ?", "page_size": 10,
            "groups": {"date_histogram": {"field": "@timestamp", "fixed_interval": "5m"}, "terms": {"fields": ["host"]}},
            "metrics": [{"field": "temperature", "metrics": ["max"]}]}
    assert es.rollup.put_job(id="ok", **body).body == {"acknowledged": True}
    with pytest.raises(BadRequestError, match="Could not find a \\[numeric\\]"):
        es.rollup.put_job(id="bad", **{**body, "metrics": [{"field": "nope", "metrics": ["max"]}]})
