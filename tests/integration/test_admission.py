"""What only a real API server can answer: CRDs, schema, defaults, CEL rules, status subresource."""

import json
import subprocess

import pytest
from kubernetes.client.rest import ApiException

from .support import GROUP, VERSION, condition, create_error


def rj(name, **spec):
    base = {"connectionRef": {"name": "es"}, "desiredState": "stopped"}
    base.update(spec)
    return {"apiVersion": f"{GROUP}/{VERSION}", "kind": "RollupJob", "metadata": {"name": name}, "spec": base}


def test_defaults_are_applied_by_the_server(cluster):
    obj = cluster.custom.create_namespaced_custom_object(GROUP, VERSION, cluster.ns, "rollupjobs", rj("d1"))
    spec = obj["spec"]
    assert spec["stop"] == {"timeout": "30s", "waitForCompletion": True}
    assert spec["backoff"] == {"initial": "1s", "max": "60s"}
    assert spec["deletionPolicy"] == "Retain" and spec["suspend"] is False


@pytest.mark.parametrize("spec,needle", [
    ({"desiredState": "paused"}, 'Unsupported value: "paused"'),
    ({"desiredState": None}, "desiredState: Required value"),
    ({"connectionRef": None}, "connectionRef: Required value"),
    ({"stop": {"timeout": "soon"}}, "spec.stop.timeout"),
    ({"stop": {"timeout": "0s"}}, "spec.stop.timeout"),
    ({"deletionPolicy": "Orphan"}, 'Unsupported value: "Orphan"'),
    ({"jobId": "a/b"}, "spec.jobId"),
    ({"jobId": "x" * 600}, "spec.jobId"),
    ({"config": {"indexPattern": "a", "rollupIndex": "b", "cron": "* * * * * ?",
                 "groups": {"dateHistogram": {"field": "t", "fixedInterval": "1h", "calendarInterval": "1d"}}}},
     "set exactly one of calendarInterval or fixedInterval"),
    ({"config": {"indexPattern": "a", "rollupIndex": "b", "cron": "* * * * * ?", "pageSize": 0,
                 "groups": {"dateHistogram": {"field": "t", "fixedInterval": "1h"}}}}, "spec.config.pageSize"),
    ({"config": {"indexPattern": "a", "rollupIndex": "b", "cron": "* * * * * ?",
                 "groups": {"dateHistogram": {"field": "t", "fixedInterval": "1h"}},
                 "metrics": [{"field": "v", "metrics": ["median"]}]}}, 'Unsupported value: "median"'),
])
def test_bad_input_is_rejected_at_admission_with_a_clear_message(cluster, spec, needle):
    body = rj("bad")
    for k, v in spec.items():
        if v is None:
            body["spec"].pop(k)
        else:
            body["spec"][k] = v
    assert needle in create_error(cluster, body)


def _patch_error(cluster, name, patch) -> str:
    with pytest.raises(ApiException) as e:
        cluster.patch(name, patch)
    assert e.value.status == 422, e.value.body
    return json.loads(e.value.body)["message"]


@pytest.mark.parametrize("patch,needle", [
    ({"spec": {"jobId": "other"}}, "spec.jobId is immutable"),
    ({"spec": {"connectionRef": {"name": "other"}}}, "spec.connectionRef is immutable"),
])
def test_identity_fields_are_immutable(cluster, patch, needle):
    cluster.custom.create_namespaced_custom_object(GROUP, VERSION, cluster.ns, "rollupjobs", rj("imm", jobId="fixed"))
    assert needle in _patch_error(cluster, "imm", patch)


CFG = {"indexPattern": "a", "rollupIndex": "b", "cron": "* * * * * ?",
       "groups": {"dateHistogram": {"field": "t", "fixedInterval": "1h"}}}
IN_PLACE_MSG = "spec.config is immutable except cron, pageSize and groups.dateHistogram.delay"


def test_config_fields_opensearch_updates_in_place_can_change(cluster):
    """cron, pageSize and groups.dateHistogram.delay (decide.IN_PLACE) may be edited, added or removed."""
    cluster.custom.create_namespaced_custom_object(GROUP, VERSION, cluster.ns, "rollupjobs", rj("cfg-edit", config=CFG))
    obj = cluster.patch("cfg-edit", {"spec": {"config": {"cron": "0 */5 * * * ?", "pageSize": 7,
                                                          "groups": {"dateHistogram": {"delay": "2m"}}}}})
    cfg = obj["spec"]["config"]
    assert (cfg["cron"], cfg["pageSize"], cfg["groups"]["dateHistogram"]["delay"]) == ("0 */5 * * * ?", 7, "2m")
    assert obj["metadata"]["generation"] == 2
    obj = cluster.patch("cfg-edit", {"spec": {"config": {"groups": {"dateHistogram": {"delay": None}}}}})
    assert "delay" not in obj["spec"]["config"]["groups"]["dateHistogram"]
    # desiredState stays editable
    assert cluster.set_desired("cfg-edit", "started")["spec"]["desiredState"] == "started"


@pytest.mark.parametrize("patch", [
    {"indexPattern": "other-*"},
    {"rollupIndex": "other"},
    {"timeout": "30s"},
    {"groups": {"dateHistogram": {"field": "other"}}},
    {"groups": {"dateHistogram": {"fixedInterval": "2h"}}},
    {"groups": {"dateHistogram": {"fixedInterval": None, "calendarInterval": "1d"}}},
    {"groups": {"dateHistogram": {"timeZone": "Europe/Paris"}}},
    {"groups": {"terms": {"fields": ["host"]}}},
    {"groups": {"histogram": {"fields": ["v"], "interval": 5}}},
    {"metrics": [{"field": "v", "metrics": ["max"]}]},
    {"cron": "0 * * * * ?", "rollupIndex": "other"},  # an allowed change does not carry a refused one
], ids=["indexPattern", "rollupIndex", "timeout", "dh.field", "dh.fixedInterval", "dh.calendarInterval", "dh.timeZone",
        "terms", "histogram", "metrics", "cron+rollupIndex"])
def test_other_config_fields_stay_immutable(cluster, patch):
    name = "cfg-imm"
    cluster.custom.create_namespaced_custom_object(
        GROUP, VERSION, cluster.ns, "rollupjobs",
        rj(name, config={**CFG, "timeout": "20s", "metrics": [{"field": "v", "metrics": ["min"]}],
                         "groups": {**CFG["groups"], "terms": {"fields": ["a"]}}}))
    msg = _patch_error(cluster, name, {"spec": {"config": patch}})
    assert IN_PLACE_MSG in msg and "create a new RollupJob with a new jobId" in msg, msg


def test_config_cannot_be_removed_and_can_be_added(cluster):
    cluster.custom.create_namespaced_custom_object(GROUP, VERSION, cluster.ns, "rollupjobs", rj("cfg-rm", config=CFG))
    assert "spec.config cannot be removed once set" in _patch_error(cluster, "cfg-rm", {"spec": {"config": None}})
    cluster.custom.create_namespaced_custom_object(GROUP, VERSION, cluster.ns, "rollupjobs", rj("cfg-add"))
    assert cluster.patch("cfg-add", {"spec": {"config": CFG}})["spec"]["config"]["cron"] == CFG["cron"]


def test_connection_validation(cluster):
    body = {"apiVersion": f"{GROUP}/{VERSION}", "kind": "ElasticsearchConnection", "metadata": {"name": "c"}, "spec": {}}
    assert "set spec.url" in create_error(cluster, body, "elasticsearchconnections")
    body["spec"] = {"url": "https://user:pw@es:9200"}
    assert "spec.url" in create_error(cluster, body, "elasticsearchconnections")
    body["spec"] = {"url": "http://es:9200", "auth": {"basic": {"secretRef": {"name": "a"}}, "apiKey": {"secretRef": {"name": "b"}}}}
    assert "either basic or apiKey" in create_error(cluster, body, "elasticsearchconnections")


def test_status_goes_only_through_the_status_subresource(cluster):
    cluster.custom.create_namespaced_custom_object(GROUP, VERSION, cluster.ns, "rollupjobs", rj("st"))
    cluster.patch("st", {"status": {"jobState": "stopped"}})
    assert "status" not in cluster.get("st") or "jobState" not in cluster.get("st").get("status", {})
    cluster.custom.patch_namespaced_custom_object_status(GROUP, VERSION, cluster.ns, "rollupjobs", "st", {"status": {"jobState": "stopped"}})
    assert cluster.get("st")["status"]["jobState"] == "stopped"


def test_generation_moves_with_spec_not_status(cluster):
    obj = cluster.custom.create_namespaced_custom_object(GROUP, VERSION, cluster.ns, "rollupjobs", rj("gen"))
    g = obj["metadata"]["generation"]
    cluster.custom.patch_namespaced_custom_object_status(GROUP, VERSION, cluster.ns, "rollupjobs", "gen", {"status": {"message": "x"}})
    assert cluster.get("gen")["metadata"]["generation"] == g
    assert cluster.set_desired("gen", "started")["metadata"]["generation"] == g + 1


def test_printer_columns_and_short_names(cluster, kubectl):
    cluster.custom.create_namespaced_custom_object(GROUP, VERSION, cluster.ns, "rollupjobs", rj("cols"))
    cluster.custom.patch_namespaced_custom_object_status(GROUP, VERSION, cluster.ns, "rollupjobs", "cols", {"status": {
        "jobId": "cols", "jobState": "stopping", "observedGeneration": 1,
        "conditions": [{"type": "Ready", "status": "False", "reason": "Stopping", "message": "m",
                        "lastTransitionTime": "2026-01-01T00:00:00Z", "observedGeneration": 1}]}})
    out = kubectl("get", "rj", "-n", cluster.ns).stdout.split("\n")
    assert out[0].split() == ["NAME", "JOB", "DESIRED", "STATE", "READY", "REASON", "AGE"]
    assert out[1].split()[:6] == ["cols", "cols", "stopped", "stopping", "False", "Stopping"]
    explain = kubectl("explain", "rollupjob.spec.desiredState").stdout
    assert "stopped" in explain and "started" in explain


def test_kubectl_wait_for_ready_follows_the_condition(cluster, kubectl):
    cluster.custom.create_namespaced_custom_object(GROUP, VERSION, cluster.ns, "rollupjobs", rj("w"))
    cond = lambda s: {"type": "Ready", "status": s, "reason": "R", "message": "", "lastTransitionTime": "2026-01-01T00:00:00Z", "observedGeneration": 1}
    cluster.custom.patch_namespaced_custom_object_status(GROUP, VERSION, cluster.ns, "rollupjobs", "w", {"status": {"conditions": [cond("False")]}})
    p = kubectl("wait", "-n", cluster.ns, "--for=condition=Ready", "rollupjob/w", "--timeout=1s", check=False)
    assert p.returncode != 0
    cluster.custom.patch_namespaced_custom_object_status(GROUP, VERSION, cluster.ns, "rollupjobs", "w", {"status": {"conditions": [cond("True")]}})
    p = kubectl("wait", "-n", cluster.ns, "--for=condition=Ready", "rollupjob/w", "--timeout=10s", check=False)
    assert p.returncode == 0, p.stderr


@pytest.mark.parametrize("job_id,needle", [
    (".", "spec.jobId must not be '.' or '..'"),
    ("..", "spec.jobId must not be '.' or '..'"),
    ("_all", "spec.jobId must not be '_all'"),
    ("a\x00b", "spec.jobId must not contain control characters"),
    ("a\x01b", "spec.jobId must not contain control characters"),
    ("a\x1bb", "spec.jobId must not contain control characters"),
    ("a\x7fb", "spec.jobId must not contain control characters"),
    ("a\nb", "spec.jobId"),  # white space: refused by the pattern
])
def test_job_ids_that_cannot_address_exactly_one_job_are_refused(cluster, job_id, needle):
    """Issue 12 item 6: '.', '..' reach other endpoints once the client resolves dot segments; '_all'
    lists every job; control characters (NUL included) cannot travel in a URL path."""
    msg = create_error(cluster, rj("bad-id", jobId=job_id))
    assert needle in msg, msg


@pytest.mark.parametrize("job_id", ["a.b", "...", ".hidden", "x..", "_all_jobs", "all", "100%", "a%2Fb", "a?b", "a#b",
                                    "a+b", "a;b", "ü-ñ", "~x", "a&b=c"])
def test_other_job_ids_are_admitted(cluster, job_id):
    obj = cluster.custom.create_namespaced_custom_object(GROUP, VERSION, cluster.ns, "rollupjobs", rj("ok-id", jobId=job_id))
    assert obj["spec"]["jobId"] == job_id


def test_optional_egress_network_policy(installed, kubectl):
    """manifests/optional/ (issue 12 item 2): accepted by the real API server, selects the operator's
    pods, and is not installed by the default kustomization."""
    import yaml

    from .support import REPO_ROOT

    out = kubectl("apply", "--dry-run=server", "-k", str(REPO_ROOT / "manifests" / "optional")).stdout
    assert "networkpolicy.networking.k8s.io/rollup-operator-egress created (server dry run)" in out, out
    policy = yaml.safe_load((REPO_ROOT / "manifests/optional/egress-networkpolicy.yaml").read_text())
    deployment = yaml.safe_load((REPO_ROOT / "manifests/deployment.yaml").read_text())
    pod_labels = deployment["spec"]["template"]["metadata"]["labels"]
    assert policy["spec"]["podSelector"]["matchLabels"].items() <= pod_labels.items()
    assert policy["metadata"]["namespace"] == deployment["metadata"]["namespace"]
    assert "optional" not in (REPO_ROOT / "manifests/kustomization.yaml").read_text().split("resources:")[1]


TRAVERSAL_NAMES = ["..", "../x", "a/../../b/secrets/c", "%2e%2e", "a%2Fb", "x/", "../../O/secrets/es-creds"]


def _connection(name, auth=None, tls=None):
    spec = {"url": "https://es.example:9200"}
    if auth:
        spec["auth"] = auth
    if tls:
        spec["tls"] = tls
    return {"apiVersion": f"{GROUP}/{VERSION}", "kind": "ElasticsearchConnection", "metadata": {"name": name}, "spec": spec}


@pytest.mark.parametrize("name", TRAVERSAL_NAMES)
@pytest.mark.parametrize("field,build", [
    ("spec.auth.basic.secretRef.name", lambda n: {"auth": {"basic": {"secretRef": {"name": n}}}}),
    ("spec.auth.apiKey.secretRef.name", lambda n: {"auth": {"apiKey": {"secretRef": {"name": n}}}}),
    ("spec.tls.caSecretRef.name", lambda n: {"tls": {"caSecretRef": {"name": n}}}),
])
def test_secret_names_that_leave_the_namespace_are_refused_at_admission(cluster, name, field, build):
    """Issue 20 finding 1: a Secret name is a DNS-1123 subdomain, so no name can walk into another namespace's path."""
    message = create_error(cluster, _connection("trav", **build(name)), plural="elasticsearchconnections")
    assert field in message and "should match" in message


@pytest.mark.parametrize("name", TRAVERSAL_NAMES)
def test_connection_refs_that_leave_the_namespace_are_refused_at_admission(cluster, name):
    assert "spec.connectionRef.name" in create_error(cluster, rj("trav", connectionRef={"name": name}))


def test_a_valid_dotted_secret_name_is_admitted(cluster):
    cluster.custom.create_namespaced_custom_object(GROUP, VERSION, cluster.ns, "elasticsearchconnections",
                                                   _connection("dotted", auth={"basic": {"secretRef": {"name": "es-creds.v2"}}}))


@pytest.mark.parametrize("spec,needle", [
    ({"requestTimeout": "1h"}, "spec.requestTimeout must be at most 5m"),
    ({"maxResponseSize": "300Mi"}, "spec.maxResponseSize must be at most 256Mi"),
    ({"maxResponseSize": "300000Ki"}, "spec.maxResponseSize must be at most 256Mi"),
    ({"maxResponseSize": "1Gi"}, "spec.maxResponseSize"),
])
def test_connection_ceilings_are_enforced_at_admission(cluster, spec, needle):
    """Issue 20 finding 2: a tenant cannot set an hour-long timeout or an unbounded answer size."""
    body = _connection("ceil")
    body["spec"].update(spec)
    assert needle in create_error(cluster, body, plural="elasticsearchconnections")


def test_connection_limits_within_the_ceilings_are_admitted_with_defaults(cluster):
    obj = cluster.custom.create_namespaced_custom_object(GROUP, VERSION, cluster.ns, "elasticsearchconnections",
                                                         _connection("within"))
    assert obj["spec"]["maxResponseSize"] == "32Mi"
    body = _connection("within2")
    body["spec"].update({"requestTimeout": "5m", "maxResponseSize": "256Mi"})
    cluster.custom.create_namespaced_custom_object(GROUP, VERSION, cluster.ns, "elasticsearchconnections", body)
