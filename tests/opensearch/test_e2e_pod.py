"""End to end on OpenSearch: the operator image as a Pod of manifests/ on the single-node cluster
(tests/e2e local-node provider, root) against the REAL OpenSearch node, which listens on the node's
address (10.217.255.1, on lo) so that the Pod reaches it through the host. Skips where the
local-node provider cannot run (not root); CI runs as root."""

from __future__ import annotations

import json
import sys
import time

import pytest
import yaml

from rollup_operator.engine.opensearch import responses as osa

from .conftest import es_config

pytestmark = [pytest.mark.e2e, pytest.mark.slow]
NS = "os-e2e"


def _progress(msg: str) -> None:
    sys.stderr.write(msg + "\n")


@pytest.fixture(scope="module")
def world(opensearch_node):
    """(cluster, node): the single-node cluster with the operator installed, and a real OpenSearch
    node on the node address (the session's node on 127.0.0.1 proves the toolchain is there)."""
    from tests.e2e import ops, providers
    from devtools.harness import node_host
    from devtools.harness.node import skip_reason
    from devtools.harness.opensearch import OpenSearchNode

    reason = skip_reason()
    if reason:
        pytest.skip(f"local-node provider: {reason}")
    c = providers.LocalNodeCluster(progress=_progress)
    node = None
    try:
        ops.install(c)
        node = OpenSearchNode(host=node_host.NODE_IP, progress=_progress).start()
        yield c, node
    finally:
        if node is not None:
            node.stop()
        c.close()


def apply(c, *docs: dict) -> None:
    c.kubectl("apply", "-f", "-", input=yaml.safe_dump_all(list(docs)))


def get(c, kind: str, name: str) -> dict:
    return json.loads(c.kubectl("-n", NS, "get", kind, name, "-o", "json").stdout)


def ready(obj: dict) -> bool:
    conds = {x["type"]: x for x in (obj.get("status") or {}).get("conditions") or []}
    return conds.get("Ready", {}).get("status") == "True" and obj["status"].get("observedGeneration") == obj["metadata"]["generation"]


def test_the_operator_pod_stops_and_creates_jobs_on_the_real_node(world):
    from tests.e2e.providers import wait_for

    c, node = world
    status, body = node.request("PUT", "/_plugins/_rollup/jobs/e2e-run", osa.to_opensearch(es_config("src", "tgt"), enabled=True))
    assert status == 201, body
    c.kubectl("create", "namespace", NS)
    meta = {"namespace": NS}
    apply(c, {"apiVersion": "rollup.esops.dev/v1alpha1", "kind": "ElasticsearchConnection",
              "metadata": {**meta, "name": "os"}, "spec": {"url": node.url, "syncInterval": "2s"}},
          {"apiVersion": "rollup.esops.dev/v1alpha1", "kind": "RollupJob", "metadata": {**meta, "name": "e2e-run"},
           "spec": {"connectionRef": {"name": "os"}, "desiredState": "stopped"}},
          {"apiVersion": "rollup.esops.dev/v1alpha1", "kind": "RollupJob", "metadata": {**meta, "name": "e2e-made"},
           "spec": {"connectionRef": {"name": "os"}, "desiredState": "started", "deletionPolicy": "Delete", "config": {
               "indexPattern": "src", "rollupIndex": "tgt-made", "cron": "0 */5 * * * ?",
               "groups": {"dateHistogram": {"field": "ts", "fixedInterval": "1h"}},
               "metrics": [{"field": "v", "metrics": ["sum"]}]}}})
    conn = wait_for(lambda: (lambda o: o if ready(o) else None)(get(c, "elasticsearchconnection", "os")), 120,
                    "the connection to be Ready", detail=c.diagnostics)
    assert conn["status"]["engine"] == "opensearch" and conn["status"]["version"] == "2.19.4"
    obj = wait_for(lambda: (lambda o: o if ready(o) else None)(get(c, "rollupjob", "e2e-run")), 120, "e2e-run Ready")
    assert obj["status"]["jobState"] == "stopped"
    assert node.request("GET", "/_plugins/_rollup/jobs/e2e-run")[1]["rollup"]["enabled"] is False
    obj = wait_for(lambda: (lambda o: o if ready(o) else None)(get(c, "rollupjob", "e2e-made")), 120, "e2e-made Ready")
    assert obj["status"]["managed"] is True and obj["status"]["jobState"] == "started"
    made = node.request("GET", "/_plugins/_rollup/jobs/e2e-made")[1]["rollup"]
    assert made["enabled"] is True and made["target_index"] == "tgt-made"
    c.kubectl("-n", NS, "delete", "rollupjob", "e2e-made", "--wait=true", "--timeout=120s")
    deadline = time.monotonic() + 30
    while node.request("GET", "/_plugins/_rollup/jobs/e2e-made")[0] != 404 and time.monotonic() < deadline:
        time.sleep(0.5)
    assert node.request("GET", "/_plugins/_rollup/jobs/e2e-made")[0] == 404  # deletionPolicy Delete
