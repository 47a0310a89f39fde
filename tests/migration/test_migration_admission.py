"""A RollupMigration's names at admission, on the real API server (issue 20's rule for the kind issue
22 added): spec.jobRef.name and spec.connectionRef.name are DNS-1123 subdomains, as Kubernetes
requires of object names, so no name can walk into another namespace's path; spec.jobId has the
RollupJob's rules (not '.', '..' or '_all', no control characters). The operator's own guard for an
object stored without these rules: tests/unit/test_migration_spec_guard.py and
tests/component/test_kube_names.py."""

from __future__ import annotations

import pytest

from tests.integration.support import GROUP, VERSION, create_error

pytestmark = pytest.mark.apiserver

TRAVERSAL_NAMES = ["..", "../x", "a/../../b/rollupjobs/c", "%2e%2e", "a%2Fb", "x/", "../../O/rollupjobs/theirs"]


def _refused(cluster, spec: dict) -> str:
    return create_error(cluster, {"apiVersion": f"{GROUP}/{VERSION}", "kind": "RollupMigration", "metadata": {"name": "m"},
                                  "spec": {"targetDataStream": "metrics-sensor", **spec}}, plural="rollupmigrations")


@pytest.mark.parametrize("name", TRAVERSAL_NAMES)
def test_job_refs_that_leave_the_namespace_are_refused(cluster, migration_crd, name):
    message = _refused(cluster, {"jobRef": {"name": name}})
    assert "spec.jobRef.name" in message and "should match" in message, message


@pytest.mark.parametrize("name", TRAVERSAL_NAMES)
def test_connection_refs_that_leave_the_namespace_are_refused(cluster, migration_crd, name):
    message = _refused(cluster, {"jobId": "sensor-5m", "connectionRef": {"name": name}})
    assert "spec.connectionRef.name" in message and "should match" in message, message


@pytest.mark.parametrize("job_id,needle", [
    (".", "must not be '.' or '..'"), ("..", "must not be '.' or '..'"), ("_all", "must not be '_all'"),
    ("a\u0000b", "control characters"), ("a/b", "should match"), ("a b", "should match"),
])
def test_job_ids_that_cannot_address_one_job_are_refused(cluster, migration_crd, job_id, needle):
    message = _refused(cluster, {"jobId": job_id, "connectionRef": {"name": "es"}})
    assert "spec.jobId" in message and needle in message, message


def test_valid_names_are_admitted(cluster, migration_crd):
    for name, spec in (("by-ref", {"jobRef": {"name": "sensor-5m.v2"}}),
                       ("by-id", {"jobId": "sensor_5m.v2", "connectionRef": {"name": "es.prod"}})):
        cluster._create("rollupmigrations", "RollupMigration", name, {"targetDataStream": "metrics-sensor", **spec})
        assert cluster.get(name, plural="rollupmigrations")["spec"]["targetDataStream"] == "metrics-sensor"
