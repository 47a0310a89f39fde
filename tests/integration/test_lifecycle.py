"""Managed creation, safe deletion, drift correction (issue: full job lifecycle)."""

import time

from .support import condition

CONFIG = {
    "indexPattern": "rollup-source",
    "rollupIndex": "rollup-target",
    "cron": "*/30 * * * * ?",
    "pageSize": 100,
    "groups": {"dateHistogram": {"field": "timestamp", "fixedInterval": "1h"}},
    "metrics": [{"field": "value", "metrics": ["min", "max", "sum"]}],
}
SOURCE = {"properties": {"timestamp": {"type": "date"}, "value": {"type": "long"}, "host": {"type": "keyword"}}}
ES_CONFIG = {  # the same config as Elasticsearch spells it, for seeding the emulator
    "index_pattern": "rollup-source", "rollup_index": "rollup-target", "cron": "*/30 * * * * ?", "page_size": 100,
    "groups": {"date_histogram": {"field": "timestamp", "fixed_interval": "1h"}},
    "metrics": [{"field": "value", "metrics": ["min", "max", "sum"]}],
}


def connect(cluster, emu, **spec):
    spec.setdefault("syncInterval", "1s")
    cluster.connection("es", emu.url, **spec)


def test_created_from_config_then_started(cluster, emulator, operator):
    emu = emulator(auto_trigger=False)
    emu.seed_rollup_usage()
    emu.create_index("rollup-source", SOURCE)
    connect(cluster, emu)
    cluster.job("made", "started", config=CONFIG)
    operator()
    obj = cluster.wait_ready("made", timeout=20)
    assert obj["status"]["managed"] is True and obj["status"]["jobState"] == "started"
    assert emu.job_state("made") == "started"
    assert emu.get_job("made")["config"]["rollup_index"] == "rollup-target"
    puts = emu.requests(method="PUT", path="/_rollup/job/made")
    assert len(puts) == 1 and puts[0].status == 200
    assert sorted(cluster.wait_events("made", "Creating", "StartRequested", "Started")) == ["Creating", "StartRequested", "Started"]


def test_existing_job_with_same_config_is_adopted_not_recreated(cluster, emulator, operator):
    emu = emulator(auto_trigger=False)
    emu.add_job("same", config=ES_CONFIG, state="stopped")
    connect(cluster, emu)
    cluster.job("same", "stopped", config=CONFIG)
    operator()
    obj = cluster.wait_ready("same")
    assert not obj["status"].get("managed")
    assert not emu.requests(method="PUT")


def test_existing_job_with_other_config_is_left_alone(cluster, emulator, operator):
    emu = emulator(auto_trigger=False)
    emu.add_job("other", config={**ES_CONFIG, "cron": "0 0 * * * ?", "page_size": 7}, state="started")
    connect(cluster, emu)
    cluster.job("other", "stopped", config=CONFIG)
    operator()
    obj = cluster.wait_reason("other", "ConfigConflict")
    msg = condition(obj, "Stalled")["message"]
    assert condition(obj, "Stalled")["status"] == "True" and "cron" in msg and "pageSize" in msg
    time.sleep(1.5)
    assert emu.job_state("other") == "started" and not emu.requests(method="POST")


def test_a_spec_config_edit_of_a_managed_job_is_a_config_conflict_on_elasticsearch(cluster, emulator, operator):
    """Admission lets spec.config.cron change (OpenSearch updates it in place); Elasticsearch cannot
    update a rollup job, so the edit is Stalled ConfigConflict with a Warning event, and the job is
    neither updated, deleted nor recreated."""
    emu = emulator(auto_trigger=False)
    emu.seed_rollup_usage()
    emu.create_index("rollup-source", SOURCE)
    connect(cluster, emu)
    cluster.job("edited", "started", config=CONFIG, deletionPolicy="Delete")
    operator()
    assert cluster.wait_ready("edited", timeout=20)["status"]["managed"] is True
    before = emu.get_job("edited")["config"]
    emu.clear_requests()
    obj = cluster.patch("edited", {"spec": {"config": {"cron": "0 */7 * * * ?", "pageSize": 7}}})
    assert obj["metadata"]["generation"] == 2
    obj = cluster.wait_reason("edited", "ConfigConflict", type_="Stalled", timeout=20)
    msg = condition(obj, "Stalled")["message"]
    assert "(cron, pageSize)" in msg and "Elasticsearch cannot update a rollup job in place" in msg, msg
    assert "create a new RollupJob with a new jobId" in msg and obj["status"]["jobState"] == "started"
    cluster.wait_events("edited", "ConfigConflict")
    warning = [e for e in cluster.events("edited") if e.reason == "ConfigConflict"]
    assert len(warning) == 1 and warning[0].type == "Warning" and "cron" in warning[0].message
    time.sleep(1.5)
    assert emu.get_job("edited")["config"] == before and emu.job_state("edited") == "started"
    assert not [r for r in emu.requests() if r.method != "GET"], [(r.method, r.path) for r in emu.requests()]


def test_usage_rule_refusal_is_explained(cluster, emulator, operator):
    emu = emulator(version="8.17.0", auto_trigger=False)
    emu.create_index("rollup-source", SOURCE)  # no rollup usage in this cluster
    connect(cluster, emu)
    cluster.job("first", "started", config=CONFIG)
    operator()
    obj = cluster.wait_reason("first", "RollupUsageRequired")
    msg = condition(obj, "Stalled")["message"]
    assert "don't have any rollup usage" in msg and "_meta._rollup" in msg
    time.sleep(2.5)  # stalled: not retried on every sync
    assert len(emu.requests(method="PUT")) == 1


def test_field_validation_error_is_the_servers_message(cluster, emulator, operator):
    emu = emulator(auto_trigger=False)
    emu.seed_rollup_usage()
    emu.create_index("rollup-source", SOURCE)
    connect(cluster, emu)
    bad = {**CONFIG, "metrics": [{"field": "field_doesnt_exist", "metrics": ["min"]}]}
    cluster.job("badfield", "stopped", config=bad)
    operator()
    obj = cluster.wait_reason("badfield", "InvalidConfig")
    assert "field_doesnt_exist" in condition(obj, "Stalled")["message"]


def test_delete_under_retain_leaves_the_job(cluster, emulator, operator):
    emu = emulator(auto_trigger=False)
    emu.add_job("keep", state="started")
    connect(cluster, emu)
    cluster.job("keep", "started")
    operator()
    obj = cluster.wait_ready("keep")
    assert "finalizers" not in obj["metadata"]
    cluster.delete("keep")
    cluster.wait_gone("keep")
    time.sleep(1)
    assert emu.job_state("keep") == "started" and not emu.requests(method="DELETE")


def test_delete_policy_stops_an_indexing_job_then_deletes_it(cluster, emulator, operator):
    emu = emulator(auto_trigger=False)
    emu.add_job("gone", state="started", stop_delay=2.5, pages_per_run=None, page_duration=30)
    emu.trigger("gone")
    connect(cluster, emu)
    cluster.job("gone", "started", deletionPolicy="Delete", stop={"timeout": "1s"})
    operator()
    obj = cluster.wait_ready("gone")
    assert obj["metadata"]["finalizers"] == ["rollup.esops.dev/cleanup"]
    cluster.delete("gone")
    cluster.wait_gone("gone", timeout=30)
    assert emu.job_state("gone") is None
    deletes = emu.requests(method="DELETE", path="/_rollup/job/gone")
    assert len(deletes) == 1 and deletes[0].status == 200
    stops = [r for r in emu.requests(method="POST") if r.path == "/_rollup/job/gone/_stop"]
    assert stops and stops[-1].timestamp < deletes[0].timestamp and len(stops) >= 2  # timed out at least once


def test_delete_while_server_down_keeps_the_finalizer_until_it_is_back(cluster, emulator, operator):
    emu = emulator(auto_trigger=False)
    emu.add_job("later", state="stopped")
    connect(cluster, emu)
    cluster.job("later", "stopped", deletionPolicy="Delete", backoff={"initial": "1s", "max": "2s"})
    operator()
    cluster.wait_ready("later")
    emu.go_down()
    cluster.delete("later")
    obj = cluster.wait_reason("later", "DeletionBlocked", timeout=20)
    assert "release-finalizer" in condition(obj, "Ready")["message"]
    cluster.wait_events("later", "DeletionBlocked")
    assert [e.type for e in cluster.events("later") if e.reason == "DeletionBlocked"] == ["Warning"]
    time.sleep(2)
    assert cluster.exists("later") and emu.job_state("later") == "stopped"
    emu.come_up()
    cluster.wait_gone("later", timeout=20)
    assert emu.job_state("later") is None


def test_release_annotation_lets_go_without_touching_the_server(cluster, emulator, operator):
    emu = emulator(auto_trigger=False)
    emu.add_job("orphan", state="started")
    connect(cluster, emu)
    cluster.job("orphan", "started", deletionPolicy="Delete")
    operator()
    cluster.wait_ready("orphan")
    emu.go_down()
    cluster.delete("orphan")
    cluster.wait_reason("orphan", "DeletionBlocked", timeout=20)
    cluster.patch("orphan", {"metadata": {"annotations": {"rollup.esops.dev/release-finalizer": "true"}}})
    cluster.wait_gone("orphan", timeout=20)
    emu.come_up()
    assert emu.job_state("orphan") == "started"


def test_drift_is_corrected_with_one_event(cluster, emulator, operator):
    emu = emulator(auto_trigger=False)
    emu.add_job("drift", state="stopped")
    connect(cluster, emu)
    cluster.job("drift", "stopped")
    operator()
    cluster.wait_ready("drift")
    emu.oob_start("drift")
    cluster.wait(
        "drift", lambda o: "DriftDetected" in cluster.event_reasons("drift") and emu.job_state("drift") == "stopped",
        timeout=20, what="drift corrected")
    cluster.wait_ready("drift")
    time.sleep(1)
    assert cluster.event_reasons("drift").count("DriftDetected") == 1


def test_vanished_job_is_reported(cluster, emulator, operator):
    emu = emulator(auto_trigger=False)
    emu.add_job("vanish", state="stopped")
    connect(cluster, emu)
    cluster.job("vanish", "stopped")
    operator()
    cluster.wait_ready("vanish")
    emu.oob_delete("vanish")
    obj = cluster.wait_reason("vanish", "JobNotFound", timeout=20)
    assert obj["status"]["jobState"] == "absent"


def test_suspend_is_honoured(cluster, emulator, operator):
    emu = emulator(auto_trigger=False)
    emu.add_job("paused", state="started")
    connect(cluster, emu)
    cluster.job("paused", "stopped", suspend=True)
    operator()
    obj = cluster.wait_reason("paused", "Suspended")
    assert obj["status"]["suspended"] is True and condition(obj, "Ready")["status"] == "False"
    time.sleep(2.5)
    assert emu.job_state("paused") == "started" and not emu.requests(method="POST")
    cluster.patch("paused", {"spec": {"suspend": False}})
    cluster.wait_ready("paused", timeout=20)
    assert emu.job_state("paused") == "stopped"


def test_sync_of_50_jobs_on_one_connection_is_one_get(cluster, emulator, operator):
    emu = emulator(auto_trigger=False)
    for i in range(50):
        emu.add_job(f"j{i:02d}", state="stopped")
    cluster.connection("es", emu.url, syncInterval="2s")
    for i in range(50):
        cluster.job(f"j{i:02d}", "stopped")
    operator()
    for i in range(50):
        cluster.wait_ready(f"j{i:02d}", timeout=30)
    time.sleep(1)
    emu.clear_requests()
    time.sleep(6.2)  # three sync periods
    reqs = emu.requests()
    assert {(r.method, r.path) for r in reqs} == {("GET", "/_rollup/job/_all")}, {(r.method, r.path) for r in reqs}
    assert 3 <= len(reqs) <= 4, len(reqs)


def test_connection_status_shows_version_and_deprecation(cluster, emulator, operator):
    emu = emulator(version="8.17.0", auto_trigger=False)
    connect(cluster, emu)
    operator()
    obj = cluster.wait("es", lambda o: condition(o, "Ready").get("status") == "True", plural="elasticsearchconnections")
    st = obj["status"]
    assert st["version"] == "8.17.0" and st["rollupDeprecated"] is True and st["newJobsRequireRollupUsage"] is True
    assert st["reachable"] is True and condition(obj, "Ready")["reason"] == "Connected"
