"""A RollupMigration cannot reach a server job that a RollupJob manages, except through that RollupJob
(spec.jobRef): not one in another namespace (the tenant boundary), not one in its own namespace named
by spec.jobId. It is Stalled (JobManagedElsewhere) and sends nothing: no stop, no template, no policy.
The real API server, the operator process, the emulator."""

from __future__ import annotations

import pytest
from kubernetes import client

from tests.integration.support import Cluster, condition

from .support import TARGET, setup_job

pytestmark = pytest.mark.apiserver


def _stalled(cluster: Cluster, name: str) -> dict:
    return cluster.wait(name, lambda o: condition(o, "Stalled").get("reason") == "JobManagedElsewhere", 30,
                        "Stalled JobManagedElsewhere", plural="rollupmigrations")


def _writes(emu) -> list[tuple[str, str]]:
    return [(r.method, r.path) for r in emu.requests() if r.method not in ("GET", "HEAD") and "_search" not in r.path]


def test_a_rollupjob_in_another_namespace_is_out_of_reach(cluster, emulator, operator, migration_crd, kube_admin):
    emu = emulator("8.17.0", auto_trigger=False)
    ns2 = f"{cluster.ns}-o"[:63]
    core = client.CoreV1Api(kube_admin)
    core.create_namespace(client.V1Namespace(metadata=client.V1ObjectMeta(name=ns2)))
    try:
        other = Cluster(kube_admin, ns2)
        operator(namespaces=[cluster.ns, ns2])
        setup_job(other, emu, "theirs")  # namespace O: its RollupJob manages [theirs] on this cluster
        cluster.connection("es", emu.url)  # namespace T: its own connection to the same cluster
        before = _writes(emu)
        cluster._create("rollupmigrations", "RollupMigration", "reach",
                        {"jobId": "theirs", "connectionRef": {"name": "es"}, "targetDataStream": TARGET,
                         "approved": True, "cutOver": {"approved": True, "jobPolicy": "Delete"}})
        obj = _stalled(cluster, "reach")
        msg = condition(obj, "Stalled")["message"]
        assert "a RollupJob in another namespace" in msg and ns2 not in msg, msg  # O's names are not told to T
        assert obj["status"]["phase"] == "Pending"
        assert _writes(emu) == before  # nothing sent: no stop, no delete, no template, no ILM policy
        assert emu.job_state("theirs") == "started" and not emu.cluster.indices.composable
        assert condition(other.get("theirs"), "Ready")["status"] == "True"
    finally:
        core.delete_namespace(ns2)


def test_a_rollupjobs_job_named_by_job_id_must_be_named_by_job_ref(cluster, emulator, operator, migration_crd):
    emu = emulator("8.17.0", auto_trigger=False)
    operator()
    setup_job(cluster, emu)  # RollupJob sensor-5m manages [sensor-5m]
    before = _writes(emu)
    cluster._create("rollupmigrations", "RollupMigration", "by-id",
                    {"jobId": "sensor-5m", "connectionRef": {"name": "es"}, "targetDataStream": TARGET, "approved": True})
    msg = condition(_stalled(cluster, "by-id"), "Stalled")["message"]
    assert f"RollupJob {cluster.ns}/sensor-5m" in msg and "spec.jobRef" in msg, msg
    assert _writes(emu) == before and emu.job_state("sensor-5m") == "started"
