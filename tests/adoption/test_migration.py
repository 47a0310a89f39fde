"""The migration plan (pure): verdicts, every blocker with its reason, metric kinds, what has no
counterpart, cross-job interval rules, and ``status_migration`` for ``status.migration``."""

from __future__ import annotations

import copy

import pytest

from rollup_operator.migration.plan import SourceFacts, plan_job, plan_jobs, status_migration
from rollup_operator.job.config import config_to_es

BASE = {
    "id": "sensor", "index_pattern": "metrics-sensor", "rollup_index": "r", "cron": "*/30 * * * * ?", "page_size": 1000,
    "groups": {"date_histogram": {"field": "@timestamp", "fixed_interval": "5m", "time_zone": "UTC"},
               "terms": {"fields": ["host"]}},
    "metrics": [{"field": "temperature", "metrics": ["min", "max", "sum", "value_count"]}],
    "timeout": "20s",
}
TSDS = SourceFacts(data_stream=True, time_series=True, dimensions=("host",), field_types={"host": "keyword"})


def cfg(**groups):
    c = copy.deepcopy(BASE)
    for k, v in groups.items():
        if v is None:
            c["groups"].pop(k, None)
        elif k == "date_histogram":
            c["groups"][k] = {**{"field": "@timestamp", "time_zone": "UTC"}, **v}
        else:
            c["groups"][k] = v
    return c


def reasons(plan):
    return [b["reason"] for b in plan["blockers"]]


def test_a_fixed_interval_job_over_a_tsds_is_downsampleable():
    p = plan_job(BASE, TSDS)
    assert p["downsampleable"] and p["verdict"] == "downsampleable" and p["blockers"] == []
    assert p["fixedInterval"] == "5m" and p["dimensions"] == ["host"] and p["sourceChecked"]
    ilm = p["requests"]["ilmPolicy"]
    assert ilm["path"] == "_ilm/policy/sensor-downsampling"
    assert ilm["body"]["policy"]["phases"]["warm"]["actions"]["downsample"] == {"fixed_interval": "5m"}
    tmpl = p["requests"]["indexTemplate"]["body"]
    assert tmpl["template"]["settings"]["index.mode"] == "time_series"
    assert tmpl["template"]["mappings"]["properties"]["host"] == {"type": "keyword", "time_series_dimension": True}
    assert tmpl["template"]["mappings"]["properties"]["temperature"]["time_series_metric"] == "gauge"
    lc = p["requests"]["dataStreamLifecycle"]
    assert lc["lifecycle"][0]["path"] == "_data_stream/metrics-sensor/_lifecycle"
    assert lc["indexTemplate"]["body"]["template"]["lifecycle"]["downsampling"] == [{"after": "1d", "fixed_interval": "5m"}]
    assert "index.lifecycle.name" not in lc["indexTemplate"]["body"]["template"]["settings"]
    assert p["summary"].startswith("downsampleable: downsample action fixed_interval 5m after 1d")


@pytest.mark.parametrize("calendar, fixed", [("1h", "1h"), ("day", "1d"), ("1w", "7d"), ("1M", "30d"), ("quarter", "90d"),
                                             ("1y", "365d"), ("minute", "1m")])
def test_calendar_interval_blocks_and_proposes_the_nearest_fixed_one(calendar, fixed):
    p = plan_job(cfg(date_histogram={"calendar_interval": calendar}), TSDS)
    assert reasons(p) == ["CalendarInterval"] and not p["downsampleable"]
    assert p["fixedInterval"] == fixed
    b = p["blockers"][0]
    assert f"calendar_interval {calendar}" in b["message"] and f"fixed_interval {fixed}" in b["proposal"]
    assert "what changes" in b["proposal"]
    assert p["requests"]["ilmPolicy"]["body"]["policy"]["phases"]["warm"]["actions"]["downsample"]["fixed_interval"] == fixed


def test_histogram_group_blocks():
    p = plan_job(cfg(histogram={"fields": ["bytes"], "interval": 100}), TSDS)
    assert reasons(p) == ["HistogramGroup"] and "bytes" in p["blockers"][0]["message"]


def test_a_subset_of_the_dimensions_blocks():
    facts = SourceFacts(data_stream=True, time_series=True, dimensions=("host", "region"))
    p = plan_job(BASE, facts)
    assert reasons(p) == ["DimensionSubset"] and "region" in p["blockers"][0]["message"]
    assert reasons(plan_job(cfg(terms=None))) == ["DimensionSubset"]  # no terms: all series summed together


def test_per_field_metric_choice_blocks_but_one_choice_for_all_does_not():
    c = copy.deepcopy(BASE)
    c["metrics"] = [{"field": "a", "metrics": ["max"]}, {"field": "b", "metrics": ["sum", "avg"]}]
    assert reasons(plan_job(c, TSDS)) == ["PerFieldMetrics"]
    c["metrics"] = [{"field": "a", "metrics": ["max", "min"]}, {"field": "b", "metrics": ["min", "max"]}]
    assert reasons(plan_job(c, TSDS)) == []


@pytest.mark.parametrize("facts, what", [
    (SourceFacts(data_stream=False, time_series=False), "is not a data stream"),
    (SourceFacts(data_stream=True, time_series=False), "not index.mode time_series"),
])
def test_a_source_that_is_not_a_tsds_blocks(facts, what):
    p = plan_job(BASE, facts)
    assert reasons(p) == ["NotTimeSeriesDataStream"] and what in p["blockers"][0]["message"]


def test_intervals_must_be_multiples_of_the_source_and_of_the_shortest_job_on_it():
    facts = SourceFacts(data_stream=True, time_series=True, dimensions=("host",), downsample_interval="2m")
    assert reasons(plan_job(BASE, facts)) == ["IntervalNotMultiple"]  # 5m on a 2m-downsampled source
    a, b, c = cfg(date_histogram={"fixed_interval": "10m"}), cfg(date_histogram={"fixed_interval": "25m"}), \
        cfg(date_histogram={"fixed_interval": "1h"})
    a["id"], b["id"], c["id"] = "a", "b", "c"
    plans = {p["jobId"]: p for p in plan_jobs([a, b, c], {"metrics-sensor": TSDS})}
    assert reasons(plans["b"]) == ["IntervalNotMultiple"] and "10m" in plans["b"]["blockers"][0]["message"]
    assert plans["a"]["downsampleable"] and plans["c"]["downsampleable"]


def test_metric_kinds_say_which_and_why():
    c = copy.deepcopy(BASE)
    c["metrics"] = [{"field": f, "metrics": ["max", "min", "sum", "value_count"]}
                    for f in ("requests_total", "bytes_count", "cpu", "errors")]
    kinds = {m["field"]: m for m in plan_job(c)["metrics"]}
    assert kinds["requests_total"]["type"] == "counter" and "grows" in kinds["requests_total"]["why"]
    assert kinds["bytes_count"]["type"] == "counter"
    assert kinds["cpu"]["type"] == "gauge" and kinds["cpu"]["downsampledMetrics"] == ["min", "max", "sum", "value_count"]
    assert kinds["requests_total"]["downsampledMetrics"] == ["last_value"] and kinds["requests_total"]["lost"]
    mapped = SourceFacts(data_stream=True, time_series=True, dimensions=("host",), metric_types={"cpu": "counter"})
    cpu = next(m for m in plan_job(c, mapped)["metrics"] if m["field"] == "cpu")
    assert cpu["type"] == "counter" and "mapping" in cpu["why"]


def test_settings_without_counterpart_say_what_happens_instead():
    c = cfg(date_histogram={"fixed_interval": "1h", "time_zone": "Europe/Paris", "delay": "2h", "field": "ts"})
    changes = {ch["setting"]: ch for ch in plan_job(c, TSDS)["changes"]}
    assert set(changes) >= {"time_zone", "delay", "cron", "page_size", "date_histogram.field"}
    assert "UTC" in changes["time_zone"]["instead"] and "look_back_time" in changes["delay"]["instead"]
    assert "no schedule" in changes["cron"]["instead"] and "@timestamp" in changes["date_histogram.field"]["instead"]


def test_after_grows_with_long_intervals_and_delays():
    assert plan_job(BASE)["after"] == "1d"
    assert plan_job(cfg(date_histogram={"fixed_interval": "1d", "delay": "1h"}))["after"] == "3d"


def test_status_migration_from_config_alone():
    st = status_migration(BASE)
    assert st == {"downsampleable": True, "blockers": [],
                  "summary": "downsampleable: downsample action fixed_interval 5m after 1d (source not checked: it must "
                             "be a time series data stream)"}
    blocked = status_migration(cfg(date_histogram={"calendar_interval": "1M"}, histogram={"fields": ["b"], "interval": 5}))
    assert blocked["downsampleable"] is False
    assert [b["reason"] for b in blocked["blockers"]] == ["CalendarInterval", "HistogramGroup"]
    assert set(blocked["blockers"][0]) == {"reason", "message"}
    assert blocked["summary"].startswith("blocked by CalendarInterval, HistogramGroup")
    assert status_migration(None) is None


def test_status_migration_takes_spec_config_through_config_to_es():
    spec_config = {"indexPattern": "x", "rollupIndex": "y", "cron": "* * * * * ?",
                   "groups": {"dateHistogram": {"field": "t", "fixedInterval": "1h"}, "terms": {"fields": ["h"]}},
                   "metrics": [{"field": "v", "metrics": ["max"]}]}
    assert status_migration(config_to_es(spec_config))["downsampleable"] is True
