"""RollupMigration end to end: the real kube-apiserver, the operator process, the emulator (issue 22)."""

from __future__ import annotations

import collections
import time

import pytest

from tests.integration.support import condition

from .support import (CALENDAR_CONFIG, TARGET, get, migration, run_side_by_side, setup_job, wait_phase, window_start)

pytestmark = pytest.mark.apiserver


def _created(obj: dict) -> set[str]:
    return {f"{c['kind']}/{c['name']}" for c in (obj.get("status") or {}).get("created") or []}


def test_fixed_interval_job_with_terms_migrates_through_every_phase(cluster, emulator, operator, migration_crd, kubectl):
    emu = emulator("8.17.0", auto_trigger=False)
    operator()
    setup_job(cluster, emu)
    migration(cluster, "m1")
    st = wait_phase(cluster, "m1", "Planned", reason="AwaitingApproval")["status"]
    assert st["plan"]["verdict"] == "downsampleable" and st["plan"]["dimensions"] == ["host", "sensor"]
    assert condition(get(cluster, "m1"), "Stalled")["status"] == "False"
    # nothing was written before the approval
    assert [(r.method, r.path) for r in emu.requests() if r.method != "GET" and not r.path.startswith("/_rollup/job")] == []
    assert TARGET not in emu.cluster.indices.data_streams

    cluster.patch("m1", {"spec": {"approved": True}}, plural="rollupmigrations")
    obj = wait_phase(cluster, "m1", "Provisioned")
    assert {"IlmPolicy/sensor-5m-downsampling", "IndexTemplate/sensor-5m-downsampling", f"DataStream/{TARGET}"} <= _created(obj)
    tmpl = emu.cluster.indices.composable["sensor-5m-downsampling"]
    assert tmpl["template"]["settings"]["index.mode"] == "time_series"
    assert tmpl["_meta"]["managed_by"] == "rollup-operator" and tmpl["_meta"]["migration"] == f"{cluster.ns}/m1"
    policy = emu.cluster.indices.ilm_policies["sensor-5m-downsampling"]["policy"]
    assert policy["phases"]["warm"]["actions"]["downsample"] == {"fixed_interval": "5m"}
    assert any("_index_template/_simulate" in r.path for r in emu.requests())
    assert "ILM to downsample" in obj["status"]["awaiting"]

    run_side_by_side(emu, "sensor-5m", window_start())
    obj = wait_phase(cluster, "m1", "Verified", reason="AwaitingCutOverApproval")
    ver = obj["status"]["verification"]
    assert ver["agree"] is True and ver["differenceCount"] == 0 and ver["differences"] == []
    assert ver["buckets"] == 24  # 12 intervals x 2 hosts
    assert "temperature.avg" in ver["metrics"] and not any(m.startswith("requests_total") for m in ver["metrics"])
    cov = obj["status"]["coverage"]
    assert cov["overlap"]["start"] and cov["downsampledIndices"][0].startswith("downsample-")
    assert emu.job_state("sensor-5m") == "started"  # side by side: the rollup job still runs

    cluster.patch("m1", {"spec": {"cutOver": {"approved": True}}}, plural="rollupmigrations")
    kubectl("wait", "--for=condition=Ready", "rollupmigration/m1", "-n", cluster.ns, "--timeout=60s")
    obj = get(cluster, "m1")
    assert obj["status"]["phase"] == "CutOver"
    assert [p["name"] for p in obj["status"]["phases"]] == ["Planned", "Approved", "Provisioned", "RunningSideBySide",
                                                            "Verified", "CutOver"]
    assert all(p["status"] == "True" and p["startedAt"] and p["completedAt"] for p in obj["status"]["phases"])
    assert cluster.get("sensor-5m")["spec"]["desiredState"] == "stopped"  # through the RollupJob's stop path
    assert emu.job_state("sensor-5m") == "stopped"
    assert "sensor-rollup" in emu.cluster.indices.indices  # the rollup index stays
    cluster.wait_events("m1", "Planned", "Approved", "Provisioned", "RunningSideBySide", "Verified", "CutOver", timeout=20)


def test_calendar_interval_job_stops_at_planned_with_its_blocker(cluster, emulator, operator, migration_crd):
    emu = emulator("8.17.0", auto_trigger=False)
    operator()
    setup_job(cluster, emu, "hourly", CALENDAR_CONFIG)
    migration(cluster, "cal", job="hourly", approved=True)
    obj = cluster.wait("cal", lambda o: condition(o, "Stalled").get("status") == "True", 30, "Stalled", plural="rollupmigrations")
    st = obj["status"]
    assert st["phase"] == "Pending" and condition(obj, "Stalled")["reason"] == "Blocked"
    assert "CalendarInterval" in st["awaiting"] and "fixed_interval 1h" in st["message"]
    assert [b["reason"] for b in st["plan"]["unaccepted"]] == ["CalendarInterval"]
    assert not emu.cluster.indices.composable and not emu.cluster.indices.ilm_policies  # approved, yet nothing written
    cluster.wait_events("cal", "Blocked", timeout=20)


def test_injected_difference_stops_at_verified_with_the_difference_shown(cluster, emulator, operator, migration_crd):
    emu = emulator("8.17.0", auto_trigger=False)
    operator()
    setup_job(cluster, emu)
    migration(cluster, "diff", approved=True, cutOver={"approved": True})
    wait_phase(cluster, "diff", "Provisioned")
    start = window_start()
    # a late document: indexed after the rollup job rolled its interval up, so only the downsampled data has it
    late = {"@timestamp": start + 2 * 5 * 60_000 + 30_000, "host": "a", "sensor": "s1", "temperature": 99.0, "requests_total": 1}
    run_side_by_side(emu, "sensor-5m", start, late=late)
    obj = cluster.wait("diff", lambda o: condition(o, "Stalled").get("reason") == "VerificationFailed", 40,
                       "VerificationFailed", plural="rollupmigrations")
    st = obj["status"]
    assert st["phase"] == "RunningSideBySide"
    diffs = {d["value"]: d for d in st["verification"]["differences"]}
    assert set(diffs) == {"doc_count", "temperature.max", "temperature.sum", "temperature.value_count", "temperature.avg"}
    assert diffs["temperature.max"]["rollup"] == 23.0 and diffs["temperature.max"]["downsampled"] == 99.0
    assert diffs["doc_count"]["dimensions"] == ["a", "s1"]
    assert emu.job_state("sensor-5m") == "started"  # never cut over while the answers differ
    assert cluster.get("sensor-5m")["spec"]["desiredState"] == "started"


def test_restart_resumes_side_by_side(cluster, emulator, operator, migration_crd):
    emu = emulator("8.17.0", auto_trigger=False)
    first = operator()
    setup_job(cluster, emu)
    migration(cluster, "rs", approved=True)
    wait_phase(cluster, "rs", "Provisioned")
    first.stop()
    puts = [r for r in emu.requests() if r.method == "PUT"]
    run_side_by_side(emu, "sensor-5m", window_start())
    operator()
    obj = wait_phase(cluster, "rs", "Verified", reason="AwaitingCutOverApproval")
    assert obj["status"]["verification"]["agree"] is True
    assert [r for r in emu.requests() if r.method == "PUT"] == puts  # nothing provisioned twice
    assert sum(1 for r in emu.requests() if r.path.endswith("/_rollover")) == 0  # ILM rolled over, the operator did not again


def test_guardrail_keeps_the_last_rollup_job_without_opt_in(cluster, emulator, operator, migration_crd):
    emu = emulator("8.17.0", auto_trigger=False)
    operator()
    setup_job(cluster, emu)
    migration(cluster, "g", approved=True, cutOver={"approved": True, "jobPolicy": "Delete"})
    wait_phase(cluster, "g", "Provisioned")
    run_side_by_side(emu, "sensor-5m", window_start())
    obj = cluster.wait("g", lambda o: condition(o, "Stalled").get("reason") == "LastRollupJob", 40, "LastRollupJob",
                       plural="rollupmigrations")
    assert obj["status"]["phase"] == "Verified"
    assert "allowRemovingLastRollupJob" in obj["status"]["awaiting"] and "8.15" in obj["status"]["message"]
    assert emu.job_state("sensor-5m") == "started" and cluster.exists("sensor-5m")
    cluster.patch("g", {"spec": {"cutOver": {"allowRemovingLastRollupJob": True}}}, plural="rollupmigrations")
    obj = wait_phase(cluster, "g", "CutOver", timeout=60)
    assert condition(obj, "Ready")["status"] == "True"
    cluster.wait_gone("sensor-5m", timeout=30)
    assert "sensor-5m" not in emu.job_ids()
    assert "sensor-rollup" in emu.cluster.indices.indices  # the rollup index stays queryable


@pytest.mark.parametrize("cleanup", ["Retain", "Delete"])
def test_deleting_before_the_cut_over_leaves_the_job_and_by_policy_keeps_or_removes_what_it_made(
        cluster, emulator, operator, migration_crd, cleanup):
    emu = emulator("8.17.0", auto_trigger=False)
    operator()
    setup_job(cluster, emu)
    migration(cluster, "del", approved=True, cleanupPolicy=cleanup)
    obj = wait_phase(cluster, "del", "Provisioned")
    assert ("rollup.esops.dev/migration-cleanup" in (obj["metadata"].get("finalizers") or [])) == (cleanup == "Delete")
    cluster.delete("del", plural="rollupmigrations")
    deadline = time.monotonic() + 20
    while cluster.exists("del", "rollupmigrations") and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not cluster.exists("del", "rollupmigrations")
    indices = emu.cluster.indices
    assert ("sensor-5m-downsampling" in indices.composable) == (cleanup == "Retain")
    # the policy is in use by the data stream's write index: Elasticsearch refuses its deletion, so it stays
    assert "sensor-5m-downsampling" in indices.ilm_policies
    assert TARGET in indices.data_streams  # data streams and their data are never deleted
    assert emu.job_state("sensor-5m") == "started" and cluster.get("sensor-5m")["spec"]["desiredState"] == "started"
    if cleanup == "Delete":
        cluster.wait_events("del", "CleanupIncomplete", timeout=10)


@pytest.mark.parametrize("version", ["9.1.0"])
def test_9x_migrates_with_deprecation_warnings_on_every_rollup_call(cluster, emulator, operator, migration_crd, kubectl, version):
    emu = emulator(version, auto_trigger=False)
    operator()
    setup_job(cluster, emu)
    migration(cluster, "m9", approved=True, cutOver={"approved": True})
    wait_phase(cluster, "m9", "Provisioned")
    run_side_by_side(emu, "sensor-5m", window_start())
    kubectl("wait", "--for=condition=Ready", "rollupmigration/m9", "-n", cluster.ns, "--timeout=60s")
    obj = get(cluster, "m9")
    assert obj["status"]["verification"]["agree"] is True and obj["status"]["serverVersion"] == version
    assert emu.job_state("sensor-5m") == "stopped"
    assert any(r.path.endswith("/_rollup_search") for r in emu.requests())


@pytest.mark.parametrize("restart_at", ["Planned", "Provisioned", "Verified", "Stopping"])
def test_a_killed_operator_resumes_in_each_phase(cluster, emulator, operator, migration_crd, restart_at):
    emu = emulator("8.17.0", auto_trigger=False)
    procs = [operator()]
    setup_job(cluster, emu)

    def restart_if(phase: str) -> None:
        if phase == restart_at:
            procs[-1].kill()  # SIGKILL: no graceful stop, nothing flushed
            procs.append(operator())

    migration(cluster, "k")
    wait_phase(cluster, "k", "Planned", reason="AwaitingApproval")
    restart_if("Planned")
    cluster.patch("k", {"spec": {"approved": True}}, plural="rollupmigrations")
    wait_phase(cluster, "k", "Provisioned")
    restart_if("Provisioned")
    run_side_by_side(emu, "sensor-5m", window_start())
    wait_phase(cluster, "k", "Verified", reason="AwaitingCutOverApproval")
    restart_if("Verified")
    if restart_at == "Stopping":  # an indexing job whose stop takes 3 s: the restart lands in the middle of it
        emu.set_job_timing("sensor-5m", stop_delay=3.0, page_duration=0.5)
        emu.force_state("sensor-5m", "indexing")
    cluster.patch("k", {"spec": {"cutOver": {"approved": True}}}, plural="rollupmigrations")
    if restart_at == "Stopping":
        cluster.wait("k", lambda o: condition(o, "Ready").get("reason") == "Stopping", 30, "Stopping", plural="rollupmigrations")
    restart_if("Stopping")
    obj = wait_phase(cluster, "k", "CutOver", timeout=60)
    assert condition(obj, "Ready")["status"] == "True" and emu.job_state("sensor-5m") == "stopped"
    puts = collections.Counter(r.path for r in emu.requests() if r.method == "PUT" and not r.path.startswith("/_rollup"))
    assert puts == {"/_ilm/policy/sensor-5m-downsampling": 1, "/_index_template/sensor-5m-downsampling": 1,
                    f"/_data_stream/{TARGET}": 1}, puts  # every phase idempotent: nothing made twice
    phases_ = ("Planned", "Approved", "Provisioned", "RunningSideBySide", "Verified", "CutOver")
    reasons = cluster.wait_events("k", *phases_, timeout=20)  # posted after the status they describe
    for phase in phases_:
        assert reasons.count(phase) == 1, reasons  # one Event per phase, across the restart (even one killed in between)


def test_a_server_job_without_a_rollupjob_is_migrated_and_stopped_directly(cluster, emulator, operator, migration_crd):
    from .support import LEGACY, LEGACY_MAPPINGS

    emu = emulator("8.17.0", auto_trigger=False)
    emu.create_index(LEGACY, LEGACY_MAPPINGS)
    es_config = {"index_pattern": "metrics-sensor*", "rollup_index": "sensor-rollup", "cron": "0 0 0 1 1 ?", "page_size": 1000,
                 "groups": {"date_histogram": {"field": "@timestamp", "fixed_interval": "5m"}, "terms": {"fields": ["host", "sensor"]}},
                 "metrics": [{"field": "temperature", "metrics": ["min", "max", "sum", "value_count", "avg"]},
                             {"field": "requests_total", "metrics": ["min", "max", "sum", "value_count", "avg"]}]}
    emu.add_job("by-hand", es_config, state="started")
    cluster.connection("es", emu.url)
    operator()
    cluster._create("rollupmigrations", "RollupMigration", "direct",
                    {"jobId": "by-hand", "connectionRef": {"name": "es"}, "targetDataStream": TARGET, "approved": True,
                     "cutOver": {"approved": True}})
    wait_phase(cluster, "direct", "Provisioned")
    run_side_by_side(emu, "by-hand", window_start())
    obj = wait_phase(cluster, "direct", "CutOver", timeout=60)
    assert obj["status"]["jobId"] == "by-hand" and obj["status"]["verification"]["agree"] is True
    assert emu.job_state("by-hand") == "stopped"
    assert any(r.method == "POST" and r.path == "/_rollup/job/by-hand/_stop" for r in emu.requests())


def test_an_opensearch_connection_is_refused_with_a_clear_reason(cluster, emulator, operator, migration_crd):
    os_emu = emulator("2.19.0", distribution="opensearch")
    cluster.connection("os", os_emu.url)
    operator()
    cluster._create("rollupmigrations", "RollupMigration", "os",
                    {"jobId": "any", "connectionRef": {"name": "os"}, "targetDataStream": TARGET, "approved": True})
    obj = cluster.wait("os", lambda o: condition(o, "Stalled").get("reason") == "UnsupportedEngine", 30, "UnsupportedEngine",
                       plural="rollupmigrations")
    assert "OpenSearch" in condition(obj, "Stalled")["message"] and obj["status"]["phase"] == "Pending"
