"""``rollup-operator export`` from the real OpenSearch node, adopted by the operator with zero writes;
``migration-plan`` refuses OpenSearch with a clear sentence."""

from __future__ import annotations

import subprocess
import sys
import time

import pytest
import yaml

from rollup_operator.engine.opensearch import responses as osa

from .conftest import es_config, without_metadata_id

pytestmark = pytest.mark.apiserver


def cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "rollup_operator.cli.main", *args], capture_output=True, text=True, timeout=60)


def stored(node, job_id: str) -> dict:
    status, body = node.request("GET", f"/_plugins/_rollup/jobs/{job_id}")
    assert status == 200, body
    return without_metadata_id(body)


@pytest.fixture
def two_jobs(opensearch_node, source_index):
    node = opensearch_node
    for job_id, enabled in (("ex-on", True), ("ex-off", False)):
        status, body = node.request("PUT", f"/_plugins/_rollup/jobs/{job_id}",
                                    osa.to_opensearch(es_config(source_index, f"os-tgt-{job_id}", page_size=250), enabled=enabled))
        assert status == 201, body
    yield ["ex-on", "ex-off"]
    for job_id in ("ex-on", "ex-off"):
        node.request("POST", f"/_plugins/_rollup/jobs/{job_id}/_stop")
        node.request("DELETE", f"/_plugins/_rollup/jobs/{job_id}")


def test_export_from_opensearch_is_adopted_with_zero_writes(cluster, operator, kubectl, opensearch_node, two_jobs):
    node = opensearch_node
    out = cli("export", "--url", node.url, "--connection", "os", "--job", "ex-on", "--job", "ex-off")
    assert out.returncode == 0, out.stderr
    docs = [d for d in yaml.safe_load_all(out.stdout) if d]
    jobs = {d["spec"]["jobId"]: d for d in docs if d["kind"] == "RollupJob"}
    assert {d["kind"] for d in docs} == {"ElasticsearchConnection", "RollupJob"} and set(jobs) == set(two_jobs)
    assert jobs["ex-on"]["spec"]["desiredState"] == "started" and jobs["ex-off"]["spec"]["desiredState"] == "stopped"
    assert jobs["ex-on"]["spec"]["config"]["cron"] == "0 */5 * * * ?"
    before = {j: stored(node, j) for j in two_jobs}
    kubectl("apply", "-n", cluster.ns, "-f", "-", input=out.stdout)
    cluster.patch("os", {"spec": {"syncInterval": "2s"}}, plural="elasticsearchconnections")
    operator()
    for j, name in ((j, d["metadata"]["name"]) for j, d in jobs.items()):
        obj = cluster.wait_ready(name, timeout=30)
        assert not obj["status"].get("managed") and obj["status"]["jobState"] == ("started" if j == "ex-on" else "stopped")
    time.sleep(3)  # syncs
    assert {j: stored(node, j) for j in two_jobs} == before  # adopted: not one write to either job


def test_migration_plan_says_it_applies_to_elasticsearch_only(opensearch_node):
    out = cli("migration-plan", "--url", opensearch_node.url)
    assert out.returncode == 6 and "applies to Elasticsearch only" in out.stderr and not out.stdout, (out.returncode, out.stderr)
