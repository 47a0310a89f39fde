"""The Argo CD health test cases as data, on statuses built by the operator's own code
(model.job_spec_from_body -> decide.decide -> status.job_status / status.connection_status,
the same path tests/gitops/test_argocd_health.py uses), written to Argo CD's layout:

    manifests/gitops/resource_customizations/rollup.esops.dev/<Kind>/health_test.yaml
    manifests/gitops/resource_customizations/rollup.esops.dev/<Kind>/testdata/<case>.yaml

    python -m tests.gitops.cases          # rewrite them
    python -m tests.gitops.cases --check  # exit 1 if the operator's code now builds other statuses

The expected health follows the documented rules (manifests/gitops/README.md), with the message
taken from the condition the rule picks -- never from running the Lua.
"""

from __future__ import annotations

import copy
import json
import sys
from pathlib import Path
from typing import Any, Callable

import yaml

from rollup_operator.job.decide import Progress, decide
from rollup_operator.job.spec import job_spec_from_body
from rollup_operator.engine.credentials import not_allowed
from rollup_operator.job.observations import FORBIDDEN, UNAUTHORIZED, UNAVAILABLE, Failure, JobAbsent, JobObserved
from rollup_operator.job.status import connection_status, invalid_status, job_status
from tests.gitops.migration_cases import CASES as MIGRATION_CASES

CUSTOMIZATIONS = Path(__file__).resolve().parent.parent.parent / "manifests" / "gitops" / "resource_customizations"
GROUP = "rollup.esops.dev"
NOW = "2026-01-01T00:00:00Z"


def job_body(generation: int = 3, **spec: Any) -> dict:
    return {
        "apiVersion": "rollup.esops.dev/v1alpha1",
        "kind": "RollupJob",
        "metadata": {"name": "sensor-hourly", "namespace": "ns", "uid": "u-1", "generation": generation},
        "spec": {"connectionRef": {"name": "es"}, "desiredState": "stopped", **spec},
    }


def with_status(body: dict, observation, progress: Progress = Progress(), previous: dict | None = None) -> dict:
    spec = job_spec_from_body(body)
    verdict = decide(spec, observation, progress).verdict
    return {**body, "status": job_status(spec, verdict, observation, progress, previous, NOW)}


def conn_body(generation: int = 2) -> dict:
    return {
        "apiVersion": "rollup.esops.dev/v1alpha1",
        "kind": "ElasticsearchConnection",
        "metadata": {"name": "es", "namespace": "ns", "generation": generation},
        "spec": {"url": "http://es:9200"},
    }


def conn_with_status(failure: Failure | None, generation: int = 2) -> dict:
    body = conn_body(generation)
    version = None if failure else "8.17.4"
    status = connection_status(generation, failure, version, True if version else None, True if version else None,
                               None, 2 if version else None, None, NOW)
    return {**body, "status": status}


def _bumped(obj: dict, generation: int) -> dict:
    obj = copy.deepcopy(obj)
    obj["metadata"]["generation"] = generation
    return obj


def _suspended_by_annotation() -> dict:
    body = job_body()
    body["metadata"]["annotations"] = {"rollup.esops.dev/suspend": "true"}
    return with_status(body, JobObserved("started"))


def _deleting() -> dict:
    body = job_body(deletionPolicy="Delete")
    body["metadata"]["deletionTimestamp"] = NOW
    body["metadata"]["finalizers"] = ["rollup.esops.dev/cleanup"]
    return with_status(body, JobObserved("stopped"))


FORBIDDEN_MSG = ("action [cluster:admin/xpack/rollup/stop] is unauthorized for user [ops] (403): "
                 "grant the user the cluster privilege manage_rollup")

# (kind, case name, object builder, expected status, message: a condition type to take it from or a literal)
CASES: list[tuple[str, str, Callable[[], dict], str, str]] = [
    ("RollupJob", "healthy_stopped", lambda: with_status(job_body(), JobObserved("stopped", {"pages_processed": 4})), "Healthy", "cond:Ready"),
    ("RollupJob", "healthy_started", lambda: with_status(job_body(desiredState="started"), JobObserved("indexing")), "Healthy", "cond:Ready"),
    ("RollupJob", "progressing_stopping", lambda: with_status(job_body(), JobObserved("indexing")), "Progressing", "cond:Reconciling"),
    ("RollupJob", "degraded_jobNotFound", lambda: with_status(job_body(), JobAbsent()), "Degraded", "cond:Stalled"),
    ("RollupJob", "degraded_forbidden", lambda: with_status(job_body(), Failure(FORBIDDEN, FORBIDDEN_MSG)), "Degraded", "cond:Stalled"),
    ("RollupJob", "progressing_unavailable",
     lambda: with_status(job_body(), Failure(UNAVAILABLE, "cannot reach Elasticsearch: connection refused")), "Progressing", "cond:Reconciling"),
    ("RollupJob", "degraded_invalidSpec",
     lambda: {**job_body(), "status": invalid_status(3, "spec.stop.timeout must be greater than zero", None, NOW)}, "Degraded", "cond:Stalled"),
    ("RollupJob", "suspended_awayFromDesired", lambda: with_status(job_body(suspend=True), JobObserved("indexing")), "Suspended", "cond:Ready"),
    ("RollupJob", "healthy_suspendedInDesired", lambda: with_status(job_body(suspend=True), JobObserved("stopped")), "Healthy", "cond:Ready"),
    ("RollupJob", "suspended_byAnnotation", _suspended_by_annotation, "Suspended", "cond:Ready"),
    ("RollupJob", "progressing_generationBehind", lambda: _bumped(with_status(job_body(generation=3), JobObserved("stopped")), 4),
     "Progressing", "Waiting for the operator to observe generation 4"),
    ("RollupJob", "progressing_staleStalled", lambda: _bumped(with_status(job_body(generation=1), JobAbsent()), 2),
     "Progressing", "Waiting for the operator to observe generation 2"),
    ("RollupJob", "progressing_noStatus", job_body, "Progressing", "Waiting for the operator to report status"),
    ("RollupJob", "progressing_deleting", _deleting, "Progressing", "cond:Reconciling"),
    ("RollupJob", "progressing_noConditions", lambda: {**job_body(), "status": {"observedGeneration": 3}}, "Progressing", "Waiting for the operator"),
    ("ElasticsearchConnection", "healthy_connected", lambda: conn_with_status(None), "Healthy", "cond:Ready"),
    ("ElasticsearchConnection", "degraded_unauthorized",
     lambda: conn_with_status(Failure(UNAUTHORIZED, "unauthorized: something to fix")), "Degraded", "cond:Stalled"),
    ("ElasticsearchConnection", "degraded_forbidden",
     lambda: conn_with_status(Failure(FORBIDDEN, "forbidden: something to fix")), "Degraded", "cond:Stalled"),
    ("ElasticsearchConnection", "degraded_secretNotAllowed",
     lambda: conn_with_status(not_allowed("ns", "es-credentials")), "Degraded", "cond:Stalled"),
    ("ElasticsearchConnection", "progressing_unreachable",
     lambda: conn_with_status(Failure(UNAVAILABLE, "cannot reach Elasticsearch: timed out")), "Progressing", "cond:Reconciling"),
    ("ElasticsearchConnection", "progressing_generationBehind", lambda: _bumped(conn_with_status(None), 3),
     "Progressing", "Waiting for the operator to observe generation 3"),
    ("ElasticsearchConnection", "progressing_noStatus", conn_body, "Progressing", "Waiting for the operator to report status"),
    *(("RollupMigration", name, build, health, message) for name, build, health, message, _ in MIGRATION_CASES),
]


def expected_message(obj: dict, spec: str) -> str:
    if not spec.startswith("cond:"):
        return spec
    wanted = spec.removeprefix("cond:")
    cond = next(c for c in obj["status"]["conditions"] if c["type"] == wanted)
    assert cond["message"], f"the {wanted} condition has no message"
    return cond["message"]


def stored(value):
    """As the API server stores it: plain JSON, nulls gone (a merge patch with null removes the field)."""
    if isinstance(value, dict):
        return {k: stored(v) for k, v in value.items() if v is not None}
    if isinstance(value, list):
        return [stored(v) for v in value]
    return value


def render() -> dict[Path, str]:
    """Every file of the layout: path -> content."""
    files: dict[Path, str] = {}
    tests: dict[str, list] = {}
    for kind, name, build, status, message in CASES:
        obj = stored(json.loads(json.dumps(build())))
        rel = f"testdata/{name}.yaml"
        files[CUSTOMIZATIONS / GROUP / kind / rel] = yaml.safe_dump(obj, sort_keys=False, width=100)
        tests.setdefault(kind, []).append({"healthStatus": {"status": status, "message": expected_message(obj, message)},
                                           "inputPath": rel})
    for kind, cases in tests.items():
        files[CUSTOMIZATIONS / GROUP / kind / "health_test.yaml"] = yaml.safe_dump({"tests": cases}, sort_keys=False, width=100)
    return files


def main(argv: list[str]) -> int:
    files = render()
    stale = [p for p, text in files.items() if not p.exists() or p.read_text() != text]
    extra = [p for p in CUSTOMIZATIONS.glob(f"{GROUP}/*/testdata/*.yaml") if p not in files]
    if "--check" in argv:
        if stale or extra:
            print(f"out of date (python -m tests.gitops.cases): {[str(p) for p in stale + extra]}", file=sys.stderr)
            return 1
        return 0
    for p in extra:
        p.unlink()
    for p, text in files.items():
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_text(text)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
