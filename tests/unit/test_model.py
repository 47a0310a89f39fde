import pytest

from rollup_operator.job.config import InvalidSpec, config_differences, config_to_es, spec_field
from rollup_operator.job.connection_spec import connection_spec_from_body
from rollup_operator.job.spec import FINALIZER, job_spec_from_body, parse_duration


def job(**spec):
    base = {"connectionRef": {"name": "es"}, "desiredState": "stopped"}
    base.update(spec)
    return {"metadata": {"namespace": "ns", "name": "n1", "uid": "u", "generation": 4}, "spec": base}


def test_defaults_apply():
    s = job_spec_from_body(job())
    assert s.job_id == "n1" and s.stop_timeout == "30s" and s.stop_timeout_s == 30 and s.wait_for_completion
    assert s.deletion_policy == "Retain" and not s.suspend and s.config is None and s.generation == 4


@pytest.mark.parametrize("value,seconds", [("30s", 30), ("500ms", 0.5), ("2m", 120), ("1h", 3600)])
def test_durations(value, seconds):
    assert parse_duration(value, what="x") == seconds


@pytest.mark.parametrize("body,needle", [
    (job(desiredState="paused"), "desiredState"),
    (job(connectionRef={}), "connectionRef"),
    (job(stop={"timeout": "soon"}), "spec.stop.timeout"),
    (job(backoff={"initial": "10s", "max": "1s"}), "backoff"),
    (job(deletionPolicy="Orphan"), "deletionPolicy"),
    (job(jobId="a/b"), "jobId"),
])
def test_invalid_specs_say_what_to_fix(body, needle):
    with pytest.raises(InvalidSpec, match=needle):
        job_spec_from_body(body)


def test_annotations_and_finalizer():
    b = job(deletionPolicy="Delete")
    b["metadata"]["annotations"] = {"rollup.esops.dev/suspend": "true", "rollup.esops.dev/release-finalizer": "yes"}
    b["metadata"]["finalizers"] = [FINALIZER]
    b["metadata"]["deletionTimestamp"] = "2026-01-01T00:00:00Z"
    s = job_spec_from_body(b)
    assert s.suspend and s.release_finalizer and s.has_finalizer and s.deleting and s.wants_finalizer


CFG = {
    "indexPattern": "src-*", "rollupIndex": "dst", "cron": "*/30 * * * * ?", "pageSize": 10,
    "groups": {"dateHistogram": {"field": "ts", "fixedInterval": "1h"}, "terms": {"fields": ["host"]}},
    "metrics": [{"field": "v", "metrics": ["min", "avg"]}],
}


def test_config_is_translated_to_elasticsearch_spelling():
    es = config_to_es(CFG)
    assert es["groups"]["date_histogram"] == {"field": "ts", "fixed_interval": "1h", "time_zone": "UTC"}
    assert es["index_pattern"] == "src-*" and es["page_size"] == 10 and es["timeout"] == "20s"


def test_config_with_two_intervals_is_invalid():
    bad = {**CFG, "groups": {"dateHistogram": {"field": "ts", "fixedInterval": "1h", "calendarInterval": "1d"}}}
    with pytest.raises(InvalidSpec, match="exactly one"):
        config_to_es(bad)


def test_config_differences_ignore_server_defaults_and_order():
    es = config_to_es(CFG)
    server = {**es, "id": "x", "metrics": [{"field": "v", "metrics": ["avg", "min"]}]}
    server["groups"] = {**es["groups"], "date_histogram": {"field": "ts", "fixed_interval": "1h", "time_zone": "UTC"}}
    assert config_differences(es, server) == []
    server2 = {**server, "rollup_index": "other"}
    assert config_differences(es, server2) == ["rollup_index"]


def test_connection_spec():
    c = connection_spec_from_body({
        "metadata": {"namespace": "ns", "name": "c", "generation": 1},
        "spec": {"url": "https://es:9200", "auth": {"basic": {"secretRef": {"name": "s"}}}, "tls": {"caSecretRef": {"name": "ca"}}},
    })
    assert c.urls == ("https://es:9200",) and c.username.key == "username" and c.password.key == "password"
    assert c.ca.key == "ca.crt" and c.secret_names == {"s", "ca"} and c.max_concurrent_requests == 64


def test_connection_needs_a_url():
    with pytest.raises(InvalidSpec, match="url"):
        connection_spec_from_body({"metadata": {}, "spec": {}})


@pytest.mark.parametrize("job_id,needle", [(".", "'.' and '..'"), ("..", "'.' and '..'"), ("_all", "'_all'"),
                                           ("a\x00b", "control character"), ("a\x1fb", "control character")])
def test_job_ids_stored_before_the_admission_rule_are_invalid_specs(job_id, needle):
    """Issue 12 item 6: the CRD refuses these; a RollupJob stored before that rule is not acted on."""
    with pytest.raises(InvalidSpec, match=needle):
        job_spec_from_body({"metadata": {"name": "x"}, "spec": {"connectionRef": {"name": "es"}, "desiredState": "stopped", "jobId": job_id}})
    assert job_spec_from_body({"metadata": {"name": "x"}, "spec": {"connectionRef": {"name": "es"}, "desiredState": "stopped",
                                                                   "jobId": "a..b"}}).job_id == "a..b"


def test_in_cluster_login_uses_the_service_address_not_cluster_dns(monkeypatch):
    from rollup_operator.app.handlers import in_cluster_server

    monkeypatch.delenv("KUBERNETES_SERVICE_HOST", raising=False)
    assert in_cluster_server() is None
    monkeypatch.setenv("KUBERNETES_SERVICE_HOST", "10.0.0.1")
    monkeypatch.setenv("KUBERNETES_SERVICE_PORT", "443")
    assert in_cluster_server() == "https://10.0.0.1:443"
    monkeypatch.setenv("KUBERNETES_SERVICE_HOST", "fd00::1")
    assert in_cluster_server() == "https://[fd00::1]:443"


def test_read_job_is_key_resource_version_and_spec_or_why_it_is_invalid():
    from rollup_operator.job.spec import read_job

    body = {**job(), "metadata": {**job()["metadata"], "resourceVersion": "17"}}
    key, rv, s, invalid = read_job(body)
    assert (key, rv, invalid) == (("ns", "n1"), 17, None)
    assert s == job_spec_from_body(body)
    bad = {**body, "spec": {**body["spec"], "desiredState": "paused"}}
    assert read_job(bad)[2:] == (None, "spec.desiredState must be 'started' or 'stopped', got 'paused'")


@pytest.mark.parametrize("es,spec", [("cron", "cron"), ("page_size", "pageSize"), ("groups.date_histogram.delay", "groups.dateHistogram.delay"),
                                     ("groups.date_histogram.time_zone", "groups.dateHistogram.timeZone"), ("index_pattern", "indexPattern"),
                                     ("rollup_index", "rollupIndex"), ("groups.terms", "groups.terms"), ("metrics", "metrics")])
def test_a_differing_field_is_named_as_spec_config_spells_it(es, spec):
    assert spec_field(es) == spec
