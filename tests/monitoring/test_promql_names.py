"""Every PromQL expression of the alert rules and the dashboard parses with Prometheus' own parser
and names only metrics and labels that a real scrape of the operator's /metrics shows: the
operator runs as a process against the real API server and the emulator, does a stop (so the
histograms, the jobs and conditions gauges and connection_up have samples; a job is Stalled as
JobNotFound, another as DuplicateJob in its desired state), and its /metrics is scraped."""

from __future__ import annotations

import uuid

import pytest
from kubernetes import client
from prometheus_client.parser import text_string_to_metric_families

from tests.integration.support import Cluster, OperatorProcess

from .bundle import dashboard, dashboard_exprs, inspect, rule_exprs

ALL_EXPRS = rule_exprs() + dashboard_exprs()


def test_every_expression_parses(promql):
    results = inspect(promql, [e for _, e in ALL_EXPRS])
    errors = [f"{where}: {r['error']}" for (where, _), r in zip(ALL_EXPRS, results) if r.get("error")]
    assert not errors, "\n".join(errors)
    # the parser is strict: a broken expression is reported, not accepted
    assert inspect(promql, ["sum(rate(rollup_operator_stop_timeouts_total[5m]"])[0]["error"]


@pytest.fixture(scope="module")
def scrape(apiserver, kubectl, kube_admin):
    """{sample name: set of label names} from a real scrape of the operator after a stop."""
    from es_rollup_emulator import EmulatorThread

    kubectl("apply", "--server-side", "-k", "manifests/")
    kubectl("wait", "--for=condition=Established", "crd/rollupjobs.rollup.esops.dev",
            "crd/elasticsearchconnections.rollup.esops.dev", "--timeout=60s")
    ns = f"t-scrape-{uuid.uuid4().hex[:5]}"
    client.CoreV1Api(kube_admin).create_namespace(client.V1Namespace(metadata=client.V1ObjectMeta(name=ns)))
    cluster = Cluster(kube_admin, ns)
    emu = EmulatorThread(version="8.17.0", auto_trigger=False)
    emu.start()
    op = OperatorProcess(apiserver.operator_kubeconfig, [ns])
    try:
        emu.add_job("scraped", state="started")
        cluster.connection("es", emu.url, syncInterval="1s")
        cluster.job("scraped", "stopped")
        cluster.job("missing", "stopped")  # not on the server: Stalled, JobNotFound
        cluster.job("scraped-twice", "stopped", jobId="scraped")  # Stalled, DuplicateJob, in its desired state
        op.start()
        cluster.wait_ready("scraped", timeout=30)
        cluster.wait_reason("missing", "JobNotFound", timeout=30)
        cluster.wait_reason("scraped-twice", "DuplicateJob", timeout=30)
        cluster.wait("scraped-twice", lambda o: o["status"].get("jobState") == "stopped", timeout=30, what="the owner's stop seen")
        text = op.metrics()
    finally:
        op.stop()
        emu.close()
    names: dict[str, set[str]] = {}
    samples = []
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            names.setdefault(sample.name, set()).update(sample.labels)
            samples.append(sample)
    SAMPLES[:] = samples
    return names


SAMPLES: list = []  # the scrape's samples, filled by the fixture


def test_the_scrape_has_what_the_bundle_needs(scrape):
    # the scenario produced a sample of every operator metric family the bundle uses
    for name in ("rollup_operator_jobs", "rollup_operator_job_conditions", "rollup_operator_connection_conditions",
                 "rollup_operator_connection_up", "rollup_operator_stop_duration_seconds_bucket",
                 "rollup_operator_stop_timeouts_total", "rollup_operator_reconcile_passes_total",
                 "rollup_operator_elasticsearch_request_duration_seconds_bucket", "rollup_operator_kubernetes_writes_total"):
        assert name in scrape, f"{name} not in the scrape"


def test_the_states_the_alerts_match_on_are_real(scrape):
    jobs = {(s.labels["state"], s.labels["desired"]): s.value for s in SAMPLES if s.name == "rollup_operator_jobs"}
    assert jobs == {("stopped", "stopped"): 2.0, ("absent", "stopped"): 1.0}, jobs


def test_the_conditions_the_alerts_match_on_are_real(scrape):
    """RollupJobStalled's and RollupConnectionNotReady's selectors, on the real scrape."""
    def by(name):
        return {(s.labels["type"], s.labels["status"], s.labels["reason"]): s.value for s in SAMPLES if s.name == name}
    jobs = by("rollup_operator_job_conditions")
    stalled = {r: v for (t, st, r), v in jobs.items() if (t, st) == ("Stalled", "True")}
    assert stalled == {"JobNotFound": 1.0, "DuplicateJob": 1.0}, jobs
    assert jobs[("Ready", "True", "Stopped")] == 1.0
    for type_ in ("Ready", "Reconciling", "Stalled"):
        assert sum(v for (t, _, _), v in jobs.items() if t == type_) == 3.0, jobs
    conns = by("rollup_operator_connection_conditions")
    assert conns == {("Ready", "True", "Connected"): 1.0, ("Reconciling", "False", "Connected"): 1.0,
                     ("Stalled", "False", "Connected"): 1.0}, conns
    buckets = {s.labels["le"] for s in SAMPLES if s.name == "rollup_operator_stop_duration_seconds_bucket"}
    assert {"3600.0", "7200.0", "21600.0"} <= buckets, buckets  # RollupStopsSlow's quantile needs a bound at 1 h


@pytest.mark.parametrize("where,expr", ALL_EXPRS, ids=[w for w, _ in ALL_EXPRS])
def test_expression_names_only_scraped_metrics_and_labels(promql, scrape, where, expr):
    r = inspect(promql, [expr])[0]
    assert not r.get("error"), r["error"]
    assert r["metrics"], f"{where} selects no metric by name"
    unknown = [m for m in r["metrics"] if m not in scrape]
    assert not unknown, f"{where} names metrics the operator does not export: {unknown}"
    known_labels = set().union(*(scrape[m] for m in r["metrics"]))
    bad = [lbl for lbl in r["labels"] + r["grouping"] if lbl not in known_labels]
    assert not bad, f"{where} names labels the scrape does not show on {r['metrics']}: {bad} (scraped: {sorted(known_labels)})"


def test_dashboard_structure():
    """What is checked without Grafana's schema (not published on our registries as JSON Schema):
    the fields Grafana needs to import the dashboard and the panels docs/operations.md promises."""
    d = dashboard()
    assert d["uid"] == "rollup-operator" and d["title"] and isinstance(d["schemaVersion"], int)
    ids = [p["id"] for p in d["panels"]]
    assert len(ids) == len(set(ids)), "panel ids must be unique"
    assert [v["name"] for v in d["templating"]["list"]] == ["datasource"]
    for p in d["panels"]:
        assert p["type"] in ("timeseries", "stat") and p["datasource"] == {"type": "prometheus", "uid": "${datasource}"}
        assert set(p["gridPos"]) == {"h", "w", "x", "y"} and p["gridPos"]["x"] + p["gridPos"]["w"] <= 24
        refs = [t["refId"] for t in p["targets"]]
        assert refs and len(refs) == len(set(refs))
    used = " ".join(e for _, e in dashboard_exprs())
    for metric in ("rollup_operator_jobs", "rollup_operator_stop_duration_seconds_bucket", "rollup_operator_stop_timeouts_total",
                   "rollup_operator_elasticsearch_request_duration_seconds_bucket", "rollup_operator_kubernetes_writes_total",
                   "rollup_operator_connection_up", "rollup_operator_reconcile_passes_total",
                   "rollup_operator_job_conditions", "rollup_operator_connection_conditions"):
        assert metric in used, f"the dashboard has no panel on {metric}"
