"""The property that matters: export -> ``kubectl apply`` -> operator changes nothing on Elasticsearch.

On the real API server (devtools/harness) with the real ``kubectl`` and the operator as its own
process: every job of the corpus (Elasticsearch's YAML REST test configs the server accepts, plus
generated ones), in a mix of states, is exported, applied and adopted: every RollupJob Ready at
its generation, ``status.managed`` unset, no ``ConfigConflict`` seen at any time, and not one
call other than a read in the emulator's request log.
"""

from __future__ import annotations

import base64
import os
import subprocess
import sys
import time
import warnings

import pytest
import yaml

from tests.integration.support import GROUP, VERSION, condition, is_ready

from . import corpus

pytestmark = pytest.mark.apiserver
READS = {"GET", "HEAD"}


def export(*args: str, env: dict | None = None) -> subprocess.CompletedProcess:
    r = subprocess.run([sys.executable, "-m", "rollup_operator.cli.main", "export", *args], capture_output=True, text=True,
                       timeout=120, env={**os.environ, **(env or {})})
    assert r.returncode == 0, r.stderr
    return r


def wait_all_ready(cluster, expected: int, timeout: float = 180, skip: set[str] = frozenset()
                   ) -> tuple[list[dict], set[str]]:
    """Poll until every RollupJob (but those of the ``skip`` job ids, which need only a status at their
    generation) is Ready; returns them and every condition reason seen on the way."""
    seen: set[str] = set()
    deadline = time.monotonic() + timeout
    while True:
        items = cluster.custom.list_namespaced_custom_object(GROUP, VERSION, cluster.ns, "rollupjobs")["items"]
        for o in items:
            seen.update(c.get("reason") for c in (o.get("status") or {}).get("conditions") or [])
        def done(o):
            if o["spec"]["jobId"] in skip:
                return (o.get("status") or {}).get("observedGeneration") == o["metadata"]["generation"]
            return is_ready(o)

        if len(items) == expected and all(done(o) for o in items):
            return items, seen
        if time.monotonic() > deadline:
            bad = {o["metadata"]["name"]: condition(o, "Ready") for o in items if not done(o)}
            raise AssertionError(f"{len(bad)} of {len(items)} not Ready after {timeout}s: {dict(list(bad.items())[:5])}")
        time.sleep(0.5)


@pytest.mark.parametrize("version", ["8.17.0", "9.1.0"])
def test_export_apply_adopts_every_job_with_zero_writes(cluster, emulator, operator, kubectl, version):
    from elasticsearch import Elasticsearch

    emu = emulator(version=version, auto_trigger=False)
    emu.seed_rollup_usage()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        accepted, refused = corpus.load(Elasticsearch(emu.url), corpus.all_jobs())
    print(f"{len(accepted)} jobs accepted by the server, {len(refused)} refused:\n  " + "\n  ".join(refused))
    assert len(accepted) >= 48
    for n, job_id in enumerate(accepted):
        if n % 3 == 0:
            emu.oob_start(job_id)
    busy = accepted[3]
    emu.set_job_timing(busy, page_duration=600)  # stays indexing for the whole test
    emu.trigger(busy)
    assert emu.job_state(busy) == "indexing"
    passing = accepted[6]  # caught stopping: exported suspended, so adoption sends nothing either
    emu.force_state(passing, "stopping")
    emu.clear_requests()

    out = export("--url", emu.url, "--namespace", cluster.ns, "--connection", "es").stdout
    assert [(r.method, r.path) for r in emu.requests()] == [("GET", "/_rollup/job/_all")]
    kubectl("apply", "-f", "-", input=out)
    operator()
    items, seen = wait_all_ready(cluster, len(accepted), skip={passing})

    assert "ConfigConflict" not in seen and "InvalidSpec" not in seen, seen
    by_job = {o["spec"]["jobId"]: o for o in items}
    assert sorted(by_job) == sorted(accepted)
    held = by_job.pop(passing)
    assert held["spec"]["suspend"] is True and held["status"]["suspended"] is True
    assert held["status"]["jobState"] == "stopping" and not held["status"].get("managed")
    for job_id, o in by_job.items():
        assert not o["status"].get("managed"), job_id
        assert o["status"]["jobState"] == emu.job_state(job_id), job_id
        assert o["spec"]["desiredState"] == ("started" if emu.job_state(job_id) in ("started", "indexing") else "stopped")
    writes = [(r.method, r.path) for r in emu.requests() if r.method not in READS]
    assert writes == [], writes[:10]
    print(f"adopted {len(items)} jobs; Elasticsearch saw {len(emu.requests())} reads and 0 other calls")


def test_export_from_connection_reads_the_secret_and_adopts(cluster, emulator, operator, kubectl, admin_kubeconfig):
    users = {"ops": ("pa55-word", ["manage_rollup"])}
    emu = emulator(auto_trigger=False, users=users)
    emu.seed_rollup_usage()
    emu.add_job("Daily_Metrics", {"groups": {"date_histogram": {"field": "timestamp", "calendar_interval": "1d",
                                                                "time_zone": "Europe/Paris"}}}, state="started")
    emu.add_job("hourly", state="stopped")
    cluster.secret("es-creds", {"username": "ops", "password": "pa55-word"})
    cluster.connection("es", emu.url, auth={"basic": {"secretRef": {"name": "es-creds"}}})
    emu.clear_requests()

    r = export("--from-connection", f"{cluster.ns}/es", "--kubeconfig", admin_kubeconfig)
    docs = list(yaml.safe_load_all(r.stdout))
    assert [d["kind"] for d in docs] == ["RollupJob", "RollupJob"]  # the connection exists: not exported again
    assert {d["metadata"]["namespace"] for d in docs} == {cluster.ns}
    assert "pa55-word" not in r.stdout and base64.b64encode(b"pa55-word").decode() not in r.stdout
    names = {d["spec"]["jobId"]: d["metadata"]["name"] for d in docs}
    assert names == {"Daily_Metrics": "daily-metrics", "hourly": "hourly"}
    kubectl("apply", "-f", "-", input=r.stdout)
    operator()
    items, seen = wait_all_ready(cluster, 2, timeout=60)
    assert "ConfigConflict" not in seen
    assert all(not o["status"].get("managed") for o in items)
    assert [r.method for r in emu.requests() if r.method not in READS] == []
    assert {r.user for r in emu.requests()} == {"ops"}


def test_status_migration_fits_the_crd_status_schema(cluster):
    """What ``status_migration`` returns is stored as is (nothing pruned) by the real API server."""
    from rollup_operator.migration.plan import status_migration
    from es_rollup_emulator.seed_migration import BLOCKED, DOWNSAMPLEABLE

    for job_id, config in (DOWNSAMPLEABLE, BLOCKED):
        name = job_id
        cluster.job(name, "stopped")
        migration = status_migration(config)
        cluster.custom.patch_namespaced_custom_object_status(
            GROUP, VERSION, cluster.ns, "rollupjobs", name, {"status": {"migration": migration}})
        assert cluster.get(name)["status"]["migration"] == migration
    assert cluster.get(BLOCKED[0])["status"]["migration"]["downsampleable"] is False
