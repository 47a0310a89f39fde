"""engine/opensearch/responses.py, pure: OpenSearch's answers (as the real node gives them,
../shared/opensearch/transcript.md) mapped onto the operator's states, outcomes and job config."""

import pytest

from rollup_operator.engine.opensearch import responses as osa
from rollup_operator.job.observations import FORBIDDEN, UNAVAILABLE, Failure, JobAbsent, JobObserved, Refused


def envelope(status, etype, reason, **extra):
    err = {"type": etype, "reason": reason, **extra}
    return {"error": {"root_cause": [err], **err}, "status": status}


NO_INDEX = envelope(404, "index_not_found_exception", "no such index [.opendistro-ism-config]", index=".opendistro-ism-config")


@pytest.mark.parametrize("api,body", [
    ("stop", NO_INDEX), ("start", NO_INDEX), ("get", NO_INDEX), ("delete", NO_INDEX),
    ("stop", envelope(404, "status_exception", "Rollup not found")),
    ("start", envelope(404, "status_exception", "Rollup not found")),
    ("get", envelope(404, "status_exception", "Rollup not found")),
    ("delete", envelope(404, "status_exception", "Rollup j2 is not found")),
])
def test_the_missing_answers_are_job_absent(api, body):
    assert osa.error(404, body, api) == JobAbsent()


def test_explain_null_of_a_missing_job_is_read_with_its_document():
    assert osa.observe("x", {"rollup": {"enabled": False}}, None).state == "stopped"


@pytest.mark.parametrize("enabled,status,state", [
    (True, None, "started"), (True, "init", "started"), (True, "started", "started"), (True, "retry", "started"),
    (False, None, "stopped"), (False, "stopped", "stopped"),
    (False, "started", "stopping"), (False, "retry", "stopping"),  # a page in flight, or _explain behind
    (False, "finished", "finished"), (True, "finished", "finished"),
    (False, "failed", "failed"), (True, "failed", "failed"),
])
def test_state_from_enabled_and_the_metadata_status(enabled, status, state):
    assert osa.state_of(enabled, {"status": status} if status else None) == state


def test_observe_carries_reason_seq_and_es_named_stats():
    doc = {"_id": "j", "_seq_no": 7, "_primary_term": 1, "rollup": {
        "enabled": False, "schedule": {"cron": {"expression": "*/5 * * * *"}}, "source_index": "s", "target_index": "t",
        "page_size": 10, "delay": 0, "continuous": True,
        "dimensions": [{"date_histogram": {"source_field": "ts", "fixed_interval": "1h", "timezone": "UTC"}}], "metrics": []}}
    md = {"status": "failed", "failure_reason": "boom", "stats": {"pages_processed": 2, "index_time_in_millis": 5,
                                                                  "search_time_in_millis": 6}}
    seen = osa.observe("j", doc, {"metadata_id": "m", "rollup_metadata": md})
    assert isinstance(seen, JobObserved) and seen.state == "failed" and seen.reason == "boom" and seen.seq == (7, 1)
    assert seen.stats == {"pages_processed": 2, "index_time_in_ms": 5, "search_time_in_ms": 6}
    assert seen.config["cron"] == "0 */5 * * * ?" and seen.config["index_pattern"] == "s"


def test_other_errors():
    conflict = envelope(409, "version_conflict_engine_exception", "[j]: version conflict, document already exists")
    assert isinstance(osa.error(409, conflict, "create"), Refused)
    stale = osa.error(409, conflict, "update")
    assert isinstance(stale, Failure) and stale.transient  # read again
    immutable = osa.error(400, envelope(400, "status_exception", "Not allowed to modify [target_index]"), "update")
    assert isinstance(immutable, Refused) and immutable.reason == "InvalidConfig"
    assert osa.error(403, envelope(403, "security_exception", "no permissions"), "stop").kind == FORBIDDEN
    proxy = osa.error(502, "<html>bad gateway</html>", "stop")
    assert isinstance(proxy, Failure) and proxy.kind == UNAVAILABLE and "html" not in proxy.message


def test_cron_round_trip_and_refusal():
    assert osa.cron_to_opensearch("0 */5 * * * ?") == "*/5 * * * *"
    assert osa.cron_to_quartz("*/5 * * * *") == "0 */5 * * * ?"
    with pytest.raises(osa.InvalidSpec):
        osa.cron_to_opensearch("*/30 * * * * ?")
