"""Flux (and kpt, Config Sync, `kubectl wait`-style tools) judge the operator's resources with
kstatus, no configuration needed. This puts the Argo CD Lua verdict and the kstatus verdict side by
side on the same operator-built objects, so manifests/gitops/README.md's table stays true.

kstatus is the real library (sigs.k8s.io/cli-utils, built from Go modules by devtools/harness);
skipped where Go is not installed.
"""

from __future__ import annotations

import json

import pytest

from rollup_operator.job.observations import FORBIDDEN, UNAVAILABLE, Failure, JobAbsent, JobObserved
from tests.gitops.test_argocd_health import CONN_LUA, JOB_LUA, conn_with_status, health, job_body, with_status  # noqa: F401
from devtools.harness import kstatus
from devtools.harness.gobuild import find_go


@pytest.fixture(scope="module", autouse=True)
def _built():
    if not find_go():
        pytest.skip("the Go toolchain is not installed: cannot build the kstatus tool")
    kstatus.ensure_built()


def _behind():
    obj = with_status(job_body(), JobObserved("stopped"))
    obj["metadata"]["generation"] = 4
    return obj


def _deleting():
    body = job_body(deletionPolicy="Delete")
    body["metadata"]["deletionTimestamp"] = "2026-01-01T00:00:00Z"
    body["metadata"]["finalizers"] = ["rollup.esops.dev/cleanup"]
    return with_status(body, JobObserved("stopped"))


# name -> (object, Argo CD health, kstatus status)
CASES = {
    "no status yet": (lambda: job_body(), "Progressing", "Current"),
    "stopped, converged": (lambda: with_status(job_body(), JobObserved("stopped")), "Healthy", "Current"),
    "stopping": (lambda: with_status(job_body(), JobObserved("indexing")), "Progressing", "InProgress"),
    "JobNotFound": (lambda: with_status(job_body(), JobAbsent()), "Degraded", "Failed"),
    "Forbidden": (lambda: with_status(job_body(), Failure(FORBIDDEN, "403")), "Degraded", "Failed"),
    "unreachable (retrying)": (lambda: with_status(job_body(), Failure(UNAVAILABLE, "refused")), "Progressing", "InProgress"),
    "suspended, not in desired state": (lambda: with_status(job_body(suspend=True), JobObserved("indexing")), "Suspended", "InProgress"),
    "suspended, in desired state": (lambda: with_status(job_body(suspend=True), JobObserved("stopped")), "Healthy", "Current"),
    "observedGeneration behind": (_behind, "Progressing", "InProgress"),
    "being deleted": (_deleting, "Progressing", "Terminating"),
    "connection ok": (lambda: conn_with_status(None), "Healthy", "Current"),
    "connection forbidden": (lambda: conn_with_status(Failure(FORBIDDEN, "403")), "Degraded", "Failed"),
    "connection unreachable": (lambda: conn_with_status(Failure(UNAVAILABLE, "refused")), "Progressing", "InProgress"),
}


@pytest.mark.parametrize("case", list(CASES))
def test_argo_and_kstatus_verdicts(case, health):  # noqa: F811 - the fixture from test_argocd_health
    make, argo_expected, kstatus_expected = CASES[case]
    obj = json.loads(json.dumps(make()))
    script = CONN_LUA if obj["kind"] == "ElasticsearchConnection" else JOB_LUA
    assert health(script, obj)[0] == argo_expected
    assert kstatus.compute(obj)[0]["status"] == kstatus_expected
