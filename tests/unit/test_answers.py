"""answers.py: each Elasticsearch answer checked against the documented shape (issue 12, item 3)."""

import elastic_transport
import elasticsearch
import pytest
from elastic_transport import ApiResponseMeta, HttpHeaders, NodeConfig

from rollup_operator.engine.elasticsearch import responses as answers
from rollup_operator.job.decide import PROGRESSING, Progress, decide
from rollup_operator.engine.elasticsearch.rollup_api import classify
from rollup_operator.job.spec import job_spec_from_body
from rollup_operator.job.observations import NOT_ELASTICSEARCH, UNAVAILABLE, UNEXPECTED_RESPONSE, Failure, JobObserved
from rollup_operator.job.status import stats_to_status

GOOD_CONFIG = {"id": "j", "index_pattern": "src-*", "rollup_index": "dst", "cron": "*/30 * * * * ?", "page_size": 1000,
               "groups": {"date_histogram": {"field": "t", "fixed_interval": "1h", "time_zone": "UTC"}},
               "metrics": [{"field": "v", "metrics": ["min", "max"]}], "timeout": "20s"}


def entry(state="started", stats=None, **config):
    return {"config": {**GOOD_CONFIG, **config}, "status": {"job_state": state}, "stats": stats if stats is not None else {}}


def spec(desired="stopped", **extra):
    return job_spec_from_body({"metadata": {"name": "j", "namespace": "ns", "generation": 1},
                               "spec": {"connectionRef": {"name": "es"}, "desiredState": desired, **extra}})


# --- the job list --------------------------------------------------------------------------------


def test_a_documented_answer_is_read():
    jobs = answers.job_list({"jobs": [entry("indexing", {"pages_processed": 3, "index_total": 7})]})
    assert jobs == {"j": JobObserved("indexing")}
    assert jobs["j"].stats == {"pages_processed": 3, "index_total": 7} and jobs["j"].config["cron"] == "*/30 * * * * ?"
    assert answers.job_list({"jobs": []}) == {}


@pytest.mark.parametrize("body,needle", [
    ({}, "no jobs array"),
    ({"jobs": "x"}, "jobs is a string"),
    ({"jobs": None}, "jobs is null"),
    ([], "the body is an array"),
    ("jobs", "the body is a string"),
    (None, "the body is null"),
    ({"jobs": [None]}, "jobs[0] is null"),
    ({"jobs": [[]]}, "jobs[0] is an array"),
    ({"jobs": [{"status": {"job_state": "started"}}]}, "jobs[0] has no config.id string"),
    ({"jobs": [{"config": {"id": 7}, "status": {"job_state": "started"}}]}, "jobs[0] has no config.id string"),
    ({"jobs": [entry(), {"config": {"id": ""}}]}, "jobs[1] has no config.id string"),
])
def test_a_malformed_list_is_one_transient_failure_never_absent(body, needle):
    out = answers.job_list(body)
    assert isinstance(out, Failure) and out.kind == UNEXPECTED_RESPONSE and out.transient, out
    assert needle in out.message and out.message.startswith("unexpected answer to GET _rollup/job/_all")
    # a job with spec.config is not created from such an answer: the decision is a retry
    d = decide(spec(config={"indexPattern": "a", "rollupIndex": "b", "cron": "* * * * * ?",
                            "groups": {"dateHistogram": {"field": "t", "fixedInterval": "1h"}}}), out, Progress())
    assert d.action is None and d.verdict.phase == PROGRESSING and d.verdict.reason == UNEXPECTED_RESPONSE


@pytest.mark.parametrize("bad,needle", [
    ({"status": {"job_state": "failed"}}, "status.job_state [failed] is none of aborting, indexing, started, stopped, stopping"),
    ({"status": {"job_state": 3}}, "status.job_state is a number, not a string"),
    ({"status": {"job_state": None}}, "status.job_state is null"),
    ({"status": {}}, "status.job_state is null"),
    ({"status": "started"}, "status is a string, not an object"),
    ({"stats": [1, 2]}, "stats is an array, not an object"),
    ({"config": {**GOOD_CONFIG, "cron": 5}}, "config.cron is a number"),
    ({"config": {**GOOD_CONFIG, "page_size": "10"}}, "config.page_size is a string"),
    ({"config": {**GOOD_CONFIG, "groups": []}}, "config.groups is an array"),
    ({"config": {**GOOD_CONFIG, "groups": {"date_histogram": "x"}}}, "config.groups.date_histogram is a string"),
    ({"config": {**GOOD_CONFIG, "metrics": {"a": 1}}}, "config.metrics is an object"),
    ({"config": {**GOOD_CONFIG, "metrics": [{"field": "v"}]}}, "config.metrics has an entry"),
])
def test_a_malformed_entry_is_a_failure_for_that_job_only(bad, needle):
    out = answers.job_list({"jobs": [{**entry(), **bad}, entry("stopped", id="other")]})
    assert isinstance(out, dict)
    assert isinstance(out["j"], Failure) and out["j"].kind == UNEXPECTED_RESPONSE and needle in out["j"].message, out["j"]
    assert "job [j]" in out["j"].message
    assert out["other"] == JobObserved("stopped")
    # the job whose entry is malformed is not reported Ready (no stale Ready=True)
    d = decide(spec("started"), out["j"], Progress())
    assert d.verdict.phase == PROGRESSING and d.action is None and d.requeue_after


def test_an_unknown_state_is_not_reported_as_aborting():
    out = answers.job_list({"jobs": [entry("failed")]})["j"]
    assert isinstance(out, Failure) and "aborting" not in decide(spec(), out, Progress()).verdict.job_state


def test_a_job_listed_twice_is_a_failure():
    out = answers.job_list({"jobs": [entry(), entry("stopped")]})
    assert isinstance(out["j"], Failure) and "listed twice" in out["j"].message


def test_missing_or_null_stats_are_empty():
    body = {"jobs": [{"config": GOOD_CONFIG, "status": {"job_state": "stopped"}}]}
    assert answers.job_list(body)["j"].stats == {}
    body["jobs"][0]["stats"] = None
    assert answers.job_list(body)["j"].stats == {}


# --- stats: int64 ---------------------------------------------------------------------------------


@pytest.mark.parametrize("value,want", [
    (5, 5), (0, 0), (2**63 - 1, 2**63 - 1), (2**63, 2**63 - 1), (10**30, 2**63 - 1), (-(2**64), -(2**63)),
    (float("inf"), 2**63 - 1), (1e300, 2**63 - 1), (12.0, 12),
    (float("nan"), None), (float("-inf"), None), (1.5, None), ("3", None), (True, None), (None, None), ([1], None), ({}, None),
])
def test_stats_are_clamped_to_int64_or_dropped(value, want):
    assert answers.stat_value(value) == want


def test_stats_keep_only_the_documented_fields_and_status_can_store_them():
    raw = {"pages_processed": float("inf"), "index_total": 2**70, "documents_processed": 4, "search_total": "x", "surprise": 1}
    got = answers.stats(raw)
    assert got == {"pages_processed": 2**63 - 1, "index_total": 2**63 - 1, "documents_processed": 4}
    assert stats_to_status(got) == {"pagesProcessed": 2**63 - 1, "documentsProcessed": 4, "indexTotal": 2**63 - 1}


def test_a_stat_of_1e400_in_the_json_is_clamped():
    import json

    body = json.loads('{"jobs": [{"config": {"id": "j"}, "status": {"job_state": "started"}, "stats": {"pages_processed": 1e400}}]}')
    assert answers.job_list(body)["j"].stats == {"pages_processed": 2**63 - 1}


# --- GET / ----------------------------------------------------------------------------------------


@pytest.mark.parametrize("number", ["8.17.0", "9.1.0", "7.17.25", "8.0.0-SNAPSHOT", "8.11"])
def test_version_strings(number):
    assert answers.server_version({"version": {"number": number}}) == number


@pytest.mark.parametrize("body,needle", [
    ({"version": {"number": 8}}, "version.number is a number"),
    ({"version": {"number": None}}, "version.number is null"),
    ({"version": {}}, "version.number is null"),
    ({"version": "8.17.0"}, "version is a string"),
    ({}, "version is null"),
    ([], "the body is an array"),
    ({"version": {"number": "banana"}}, "is not a version"),
    ({"version": {"number": "8.17.0\n<html>"}}, "is not a version"),
])
def test_bad_versions_are_unexpected(body, needle):
    out = answers.server_version(body)
    assert isinstance(out, Failure) and out.kind == UNEXPECTED_RESPONSE and needle in out.message, out
    assert "\n" not in out.message


# --- action answers ------------------------------------------------------------------------------


@pytest.mark.parametrize("api,body", [("start", {"started": True}), ("stop", {"stopped": True}),
                                      ("create", {"acknowledged": True}), ("delete", {"acknowledged": True})])
def test_documented_acknowledgements(api, body):
    assert answers.acknowledged(api, body) is None


@pytest.mark.parametrize("api,body,needle", [
    ("stop", {"stopped": False}, "got stopped false"), ("start", {}, "an object without started"),
    ("create", [], "got an array"), ("delete", {"acknowledged": "yes"}, "acknowledged as a string"), ("stop", None, "got null"),
])
def test_other_acknowledgements_are_unexpected(api, body, needle):
    out = answers.acknowledged(api, body)
    assert out.kind == UNEXPECTED_RESPONSE and needle in out.message and out.transient


# --- error answers ---------------------------------------------------------------------------------


def api_error(status, body, headers=None):
    meta = ApiResponseMeta(status=status, http_version="1.1", headers=HttpHeaders(headers or {}), duration=0.0,
                           node=NodeConfig("http", "localhost", 9200))
    return elasticsearch.ApiError(message=str(status), meta=meta, body=body)


ES = {"X-Elastic-Product": "Elasticsearch"}


@pytest.mark.parametrize("status,kind", [(500, NOT_ELASTICSEARCH), (404, NOT_ELASTICSEARCH), (401, NOT_ELASTICSEARCH),
                                         (400, NOT_ELASTICSEARCH), (502, UNAVAILABLE), (503, UNAVAILABLE), (429, UNAVAILABLE)])
def test_a_foreign_error_body_is_never_repeated(status, kind):
    secret = "internal-admin-token: s3cr3t-v4lue <html>kubelet metrics</html>"
    for body in (secret, {"error": {"type": "x", "reason": secret}}, {"whatever": secret}):
        out = classify(api_error(status, body), "get")
        assert out.kind == kind and "s3cr3t" not in out.message and "kubelet" not in out.message
        assert f"HTTP {status}" in out.message and "X-Elastic-Product" in out.message


def test_an_elasticsearch_error_keeps_only_type_and_reason_truncated():
    long = "r" * 5000
    body = {"error": {"root_cause": [], "type": "illegal_argument_exception", "reason": long, "stack_trace": "SECRET"},
            "status": 400, "extra": "SECRET"}
    out = classify(api_error(400, body, ES), "get")
    assert out.kind == UNAVAILABLE and "illegal_argument_exception" in out.message and "SECRET" not in out.message
    assert len(out.message) < answers.MAX_REASON + 120


def test_error_parts():
    assert answers.error_parts({"error": {"type": "t", "reason": "r", "caused_by": {"type": "c", "reason": "inner"}}}) == ("t", "r: inner")
    assert answers.error_parts({"error": "no handler found for uri [/x] and method [GET]", "status": 400}) == (
        "", "no handler found for uri [/x] and method [GET]")
    assert answers.error_parts({"task_failures": [{"reason": {"type": "illegal_state_exception", "reason": "Could not"}}]}) == (
        "illegal_state_exception", "Could not")
    # anything else of a body is not kept
    assert answers.error_parts("raw text body") == ("", "")
    assert answers.error_parts({"message": "x"}) == ("", "")
    assert answers.error_parts({"error": {"type": "t\r\nInjected: 1", "reason": "a\x00b"}}) == ("t Injected: 1", "a b")
    # a caused_by chain that never ends is cut
    chain: dict = {"reason": "deep"}
    for _ in range(1000):
        chain = {"reason": "x", "caused_by": chain}
    assert answers.error_parts({"error": {"type": "t", "reason": "r", "caused_by": chain}})[0] == "t"


def test_an_unparsable_body_does_not_quote_the_body():
    exc = elastic_transport.SerializationError("Unable to deserialize as JSON: b'<html>SECRET</html>'")
    out = classify(exc, "get")
    assert out.kind == UNEXPECTED_RESPONSE and "SECRET" not in out.message and out.transient


def test_clip():
    assert answers.clip("a\r\nb", 10) == "a b"
    assert answers.clip("x" * 50, 10) == "x" * 9 + "…"
