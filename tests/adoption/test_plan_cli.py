"""``rollup-operator migration-plan`` against the emulator seeded as the sandbox is: verdicts,
blockers, the source checks it reads, the three output formats, and only reads on the server."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest
import yaml

from es_rollup_emulator import EmulatorThread
from es_rollup_emulator.seed_migration import seed


def plan(url: str, *args: str) -> subprocess.CompletedProcess:
    r = subprocess.run([sys.executable, "-m", "rollup_operator.cli.main", "migration-plan", "--url", url, *args],
                       capture_output=True, text=True, timeout=60, env=dict(os.environ))
    assert r.returncode == 0, r.stderr
    return r


@pytest.fixture(scope="module")
def emu():
    with EmulatorThread(version="8.17.0", auto_trigger=False) as emu:
        emu.seed_rollup_usage()
        seed(emu)
        yield emu


def test_json_plan_of_the_sandbox_jobs(emu):
    emu.clear_requests()
    plans = {p["jobId"]: p for p in json.loads(plan(emu.url, "-o", "json").stdout)["jobs"]}
    ok, blocked = plans["sensor-5m"], plans["weblogs-monthly"]
    assert ok["downsampleable"] and ok["sourceChecked"] and ok["blockers"] == []
    assert {m["field"]: m["type"] for m in ok["metrics"]} == {"temperature": "gauge", "requests_total": "counter"}
    assert ok["requests"]["indexTemplate"]["body"]["template"]["mappings"]["properties"]["requests_total"]["type"] == "long"
    assert [b["reason"] for b in blocked["blockers"]] == ["CalendarInterval", "HistogramGroup", "PerFieldMetrics",
                                                          "NotTimeSeriesDataStream"]
    assert blocked["fixedInterval"] == "30d"
    methods = {r.method for r in emu.requests()}
    paths = sorted({r.path for r in emu.requests()})
    assert methods == {"GET"}, methods
    assert paths == ["/_data_stream/metrics-sensor", "/_data_stream/weblogs", "/_rollup/job/_all", "/metrics-sensor",
                     "/weblogs"]


def test_a_dimension_the_job_does_not_group_by_blocks(emu):
    emu.add_job("sensor-by-host", {"index_pattern": "metrics-sensor", "rollup_index": "sensor-rollup",
                                   "groups": {"date_histogram": {"field": "@timestamp", "fixed_interval": "7m"},
                                              "terms": {"fields": ["host"]}},
                                   "metrics": [{"field": "temperature", "metrics": ["max", "min", "sum", "value_count"]}]})
    try:
        p = {p["jobId"]: p for p in yaml.safe_load(plan(emu.url, "--job", "sensor-by-host", "--job", "sensor-5m").stdout)["jobs"]}
        assert [b["reason"] for b in p["sensor-by-host"]["blockers"]] == ["DimensionSubset", "IntervalNotMultiple"]
        assert "sensor" in p["sensor-by-host"]["blockers"][0]["message"]
        assert p["sensor-5m"]["downsampleable"]
    finally:
        emu.oob_delete("sensor-by-host")


def test_markdown_report_one_row_per_job_and_a_summary(emu):
    md = plan(emu.url, "-o", "markdown").stdout
    rows = [line for line in md.splitlines() if line.startswith("| ") and not line.startswith("| job")]
    assert len(rows) == 2
    assert rows[0].startswith("| sensor-5m | 5m | host, sensor | temperature (gauge), requests_total (counter) | downsampleable")
    assert "**CalendarInterval**" in rows[1] and "blocked" in rows[1]
    assert "**1 of 2 jobs can move to downsampling; 1 blocked.**" in md


def test_no_source_check_reads_only_the_jobs(emu):
    emu.clear_requests()
    p = yaml.safe_load(plan(emu.url, "--no-source-check").stdout)["jobs"]
    assert [r.path for r in emu.requests()] == ["/_rollup/job/_all"]
    assert not any(x["sourceChecked"] for x in p)


def test_source_reads_refused_become_a_note_not_a_failure():
    users = {"roller": ("pw", ["monitor_rollup"])}
    with EmulatorThread(version="8.17.0", auto_trigger=False, users=users) as emu:
        emu.seed_rollup_usage()
        seed(emu)
        r = subprocess.run([sys.executable, "-m", "rollup_operator.cli.main", "migration-plan", "--url", emu.url,
                            "--username", "roller", "--password-env", "PW", "-o", "json"],
                           capture_output=True, text=True, env={**os.environ, "PW": "pw"}, timeout=60)
    assert r.returncode == 0, r.stderr
    plans = json.loads(r.stdout)["jobs"]
    assert all(not p["sourceChecked"] and "view_index_metadata" in p["sourceNote"] for p in plans)
