"""Resource names derived from rollup job ids: valid DNS-1123 labels, distinct, stable."""

from __future__ import annotations

import re

import pytest

from rollup_operator.cli.export import ExportError, base_name, resource_names

LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")


def test_valid_ids_keep_their_name():
    assert resource_names(["sensor-hourly", "a", "x1"]) == {"sensor-hourly": "sensor-hourly", "a": "a", "x1": "x1"}


@pytest.mark.parametrize("job_id, name", [
    ("Logs_Daily", "logs-daily"),
    ("metrics.cpu.5m", "metrics-cpu-5m"),
    ("--weird__id--", "weird-id"),
    ("UPPER", "upper"),
])
def test_ids_are_cleaned_up(job_id, name):
    assert resource_names([job_id]) == {job_id: name}


def test_two_ids_on_one_name_get_distinct_stable_suffixes():
    names = resource_names(["Sensor_1", "sensor.1", "sensor-1"])
    assert names["sensor-1"] == "sensor-1"  # the id that is a valid name keeps it
    assert names["Sensor_1"] != names["sensor.1"]
    assert all(n.startswith("sensor-1-") and len(n) == len("sensor-1-") + 6 for k, n in names.items() if k != "sensor-1")
    assert resource_names(["sensor.1", "Sensor_1", "sensor-1"]) == names  # order does not matter


def test_nothing_left_and_overlong_ids():
    names = resource_names(["___", "x" * 300, "Y" * 300])
    assert names["___"].startswith("job-")
    assert all(LABEL.match(n) and len(n) <= 63 for n in names.values())
    assert len(set(names.values())) == 3


def test_every_name_is_a_label(tmp_path):
    ids = ["a b", "ä-ö", "0start", "end-", "x/y", "Gen_08.cal-1M", "Gen_16.cal-1m", "-", "." * 5]
    names = resource_names(ids)
    assert len(set(names.values())) == len(ids)
    assert all(LABEL.match(n) and len(n) <= 63 for n in names.values()), names
    assert base_name("Gen_08.cal-1M") == "gen-08-cal-1m"


def test_a_hash_clash_is_a_clear_error(monkeypatch):
    import rollup_operator.cli.export as ex

    monkeypatch.setattr(ex, "_short_hash", lambda _id: "abcdef")
    with pytest.raises(ExportError, match="map to the resource name"):
        resource_names(["A_b", "a.b"])
