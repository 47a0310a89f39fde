"""How each Elasticsearch answer becomes a domain outcome (the messages are those of the API doc)."""

import elastic_transport
import elasticsearch
import pytest
from elastic_transport import ApiResponseMeta, HttpHeaders, NodeConfig

from rollup_operator.engine.elasticsearch.rollup_api import classify, redact
from rollup_operator.job.observations import JobAbsent, Refused, StopTimedOut, WrongState


def api_error(status, body, cls=elasticsearch.ApiError):
    meta = ApiResponseMeta(status=status, http_version="1.1", headers=HttpHeaders({"X-Elastic-Product": "Elasticsearch"}), duration=0.0,
                           node=NodeConfig("http", "localhost", 9200))
    return cls(message=str(status), meta=meta, body=body)


def envelope(type_, reason, status):
    return {"error": {"root_cause": [{"type": type_, "reason": reason}], "type": type_, "reason": reason}, "status": status}


@pytest.mark.parametrize("status", [500, 429])
def test_stop_timeout_is_not_a_failure_and_carries_the_state(status):
    reason = "Timed out after [5s] while waiting for rollup job [j] to stop. State was [STOPPING]"
    assert classify(api_error(status, envelope("timeout_exception", reason, status)), "stop") == StopTimedOut("stopping")


def test_missing_job_is_absent():
    body = envelope("resource_not_found_exception", "Task for Rollup Job [j] not found", 404)
    assert classify(api_error(404, body, elasticsearch.NotFoundError), "stop") == JobAbsent()


def test_start_while_stopping_is_wrong_state():
    reason = "Cannot start task for Rollup Job [j] because state was [STOPPING]"
    assert classify(api_error(500, envelope("exception", reason, 500)), "start") == WrongState("stopping", reason)


def test_delete_of_running_job_reads_the_task_failures_body():
    body = {"task_failures": [{"task_id": 1, "node_id": "n", "status": "INTERNAL_SERVER_ERROR", "reason": {
        "type": "illegal_state_exception",
        "reason": "Could not delete job [j] because indexer state is [STARTED].  Job must be [STOPPED] before deletion."}}],
        "acknowledged": False}
    out = classify(api_error(500, body), "delete")
    assert isinstance(out, WrongState) and out.state == "started"


def test_forbidden_names_the_privilege():
    reason = ("action [cluster:admin/xpack/rollup/stop] is unauthorized for user [bob] with effective roles [viewer], "
              "this action is granted by the cluster privileges [manage_rollup,manage,all]")
    out = classify(api_error(403, envelope("security_exception", reason, 403), elasticsearch.AuthorizationException), "stop")
    assert out.kind == "Forbidden" and "manage_rollup" in out.message


def test_unauthorized():
    out = classify(api_error(401, envelope("security_exception", "unable to authenticate user [x]", 401),
                             elasticsearch.AuthenticationException), "get")
    assert out.kind == "Unauthorized"


def test_usage_rule_refusal():
    reason = "new rollup jobs are not allowed in clusters that don't have any rollup usage, since rollup has been deprecated"
    out = classify(api_error(400, envelope("illegal_argument_exception", reason, 400)), "create")
    assert isinstance(out, Refused) and out.reason == "RollupUsageRequired"


def test_id_reuse_refusal():
    reason = "Cannot create rollup job [j] because job was previously created (existing metadata)."
    out = classify(api_error(409, envelope("status_exception", reason, 409), elasticsearch.ConflictError), "create")
    assert out.reason == "JobIdReused"


def test_5xx_and_connection_errors_are_unavailable():
    assert classify(api_error(503, envelope("unavailable", "x", 503)), "get").kind == "ElasticsearchUnavailable"
    assert classify(elastic_transport.ConnectionError("refused"), "get").kind == "ElasticsearchUnavailable"
    assert classify(elastic_transport.TlsError("bad cert"), "get").kind == "TLSError"


def test_not_elasticsearch():
    meta = ApiResponseMeta(status=200, http_version="1.1", headers=HttpHeaders({"X-Elastic-Product": "Elasticsearch"}), duration=0.0, node=NodeConfig("http", "h", 1))
    assert classify(elasticsearch.UnsupportedProductError("nope", meta=meta, body={}), "info").kind == "NotElasticsearch"


def test_unknown_exceptions_propagate():
    with pytest.raises(KeyError):
        classify(KeyError("bug"), "get")


def test_redact_credentials_in_urls():
    assert redact("GET https://user:secret@es:9200/x") == "GET https://***@es:9200/x"


@pytest.mark.parametrize("status,cls,reason", [
    (401, elasticsearch.AuthenticationException, "unable to authenticate user [ops-admin] for REST request [/_rollup/job/_all]"),
    (403, elasticsearch.AuthorizationException,
     "action [cluster:monitor/xpack/rollup/get] is unauthorized for user [ops-admin] with effective roles [viewer], this action is granted by the cluster privileges [monitor_rollup,all]"),
    (403, elasticsearch.AuthorizationException, "action [cluster:admin/xpack/rollup/stop] is unauthorized for user [svc] run as [ops-admin] with roles [x]"),
    (401, elasticsearch.AuthenticationException, "unable to authenticate with provided credentials: api key [ops-admin] is expired"),
])
def test_no_username_or_key_id_reaches_the_message(status, cls, reason):
    """Issue 20 finding 4: status and Events are readable by the namespace's viewers."""
    out = classify(api_error(status, envelope("security_exception", reason, status), cls), "get")
    assert out.kind in ("Unauthorized", "Forbidden")
    assert "ops-admin" not in out.message and "[…]" in out.message
    if status == 403:
        assert "monitor_rollup" in out.message or "stop" in out.message  # the privilege advice stays
