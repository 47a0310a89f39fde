"""A RollupMigration's own guard (issue 20's defence in depth, for the kind issue 22 added): a name
that is not an object name, a job id that cannot address one job, or a data stream name that is not
one never reaches a request. The CRD refuses all of these at admission (tests/migration/
test_migration_admission.py); this guard holds for an object stored without those rules. The
message names the field, never the value."""

import pytest

from rollup_operator.migration.spec import migration_spec, spec_problem

TRAVERSALS = ["..", "../x", "a/../../b/rollupjobs/c", "%2e%2e", "a%2Fb", "x/", "../../o/elasticsearchconnections/es", "A", ""]


def body(**spec):
    base = {"targetDataStream": "metrics-sensor"}
    base.update(spec)
    return {"metadata": {"name": "m", "namespace": "t", "uid": "u", "generation": 1}, "spec": base}


@pytest.mark.parametrize("name", TRAVERSALS)
def test_a_job_ref_that_is_not_an_object_name_is_refused_naming_the_field(name):
    problem = spec_problem(migration_spec(body(jobRef={"name": name})))
    assert problem is not None and problem.startswith("spec.jobRef.name is not a valid object name")
    assert not name or name not in problem


@pytest.mark.parametrize("name", TRAVERSALS)
def test_a_connection_ref_that_is_not_an_object_name_is_refused_naming_the_field(name):
    problem = spec_problem(migration_spec(body(jobId="j", connectionRef={"name": name})))
    assert problem is not None and problem.startswith("spec.connectionRef.name is not a valid object name")
    assert not name or name not in problem


@pytest.mark.parametrize("job_id", [".", "..", "_all", "a/b", "a*", "a,b", "a b", "a\tb", "a\rb", "x" * 513])
def test_a_job_id_that_cannot_address_one_job_is_refused(job_id):
    problem = spec_problem(migration_spec(body(jobId=job_id, connectionRef={"name": "es"})))
    assert problem is not None and problem.startswith("spec.jobId ")


@pytest.mark.parametrize("target", ["..", "../x", "a/b", "A", "-a", "x" * 256, ""])
def test_a_target_that_is_not_a_data_stream_name_is_refused(target):
    problem = spec_problem(migration_spec(body(jobRef={"name": "j"}, targetDataStream=target)))
    assert problem is not None and problem.startswith("spec.targetDataStream ")


@pytest.mark.parametrize("spec", [
    {"jobRef": {"name": "sensor-5m"}},
    {"jobRef": {"name": "a.b"}},
    {"jobId": "sensor_5m.v2", "connectionRef": {"name": "es"}},
    {"jobId": "x" * 512, "connectionRef": {"name": "es.prod"}},
])
def test_valid_specs_pass(spec):
    assert spec_problem(migration_spec(body(**spec))) is None
