"""The operator process (real kube-apiserver, manifests' RBAC) against the REAL OpenSearch node.

The connection says no engine: it is detected from ``GET /``. The server's job is read straight
from the node (``GET _plugins/_rollup/jobs/<id>``: ``enabled``, ``_version``; ``_explain``: status
and counters), never through the operator. ``_version`` counts every write to the job document
(each _start and _stop bumps it), so "no write" is checked on the server itself.
"""

from __future__ import annotations

import time

import pytest

from tests.support.waiting import wait_for

from tests.integration.support import condition

from .conftest import without_metadata_id

pytestmark = pytest.mark.apiserver

CONFIG = {  # spec.config (camelCase, as a user writes it)
    "indexPattern": "os-src", "rollupIndex": "os-tgt-op", "cron": "0 */5 * * * ?", "pageSize": 1000,
    "groups": {"dateHistogram": {"field": "ts", "fixedInterval": "1h", "timeZone": "UTC"}, "terms": {"fields": ["host"]}},
    "metrics": [{"field": "v", "metrics": ["min", "max", "sum"]}],
}


def connect(cluster, node) -> None:
    cluster.connection("os", node.url, syncInterval="2s")


def doc(node, job_id: str) -> dict | None:
    status, body = node.request("GET", f"/_plugins/_rollup/jobs/{job_id}")
    if status == 404:
        return None
    assert status == 200, body
    return body


def metadata(node, job_id: str) -> dict:
    status, body = node.request("GET", f"/_plugins/_rollup/jobs/{job_id}/_explain")
    assert status == 200, body
    return (body.get(job_id) or {}).get("rollup_metadata") or {}


def put_job(node, job_id: str, source: str, *, enabled: bool, continuous: bool = True, page_size: int = 1000,
            fire_soon: bool = False, interval: str = "1m") -> dict:
    """A job made on the server by hand. ``fire_soon``: an interval schedule whose start lies 57 s back,
    which the job-scheduler fires within ~3 s (instead of at the next minute)."""
    start = int(time.time() * 1000) - (57_000 if fire_soon else 0)
    status, body = node.request("PUT", f"/_plugins/_rollup/jobs/{job_id}", {"rollup": {
        "enabled": enabled, "schedule": {"interval": {"period": 1, "unit": "Minutes", "start_time": start}},
        "description": "made by hand", "source_index": source, "target_index": f"os-tgt-{job_id}",
        "page_size": page_size, "delay": 0, "continuous": continuous,
        "dimensions": [{"date_histogram": {"source_field": "ts", "fixed_interval": interval, "timezone": "UTC"}},
                       {"terms": {"source_field": "host"}}],
        "metrics": [{"source_field": "v", "metrics": [{"sum": {}}]}]}})
    assert status == 201, body
    return body


def until(pred, timeout: float, what: str):
    return wait_for(pred, timeout, what, interval=0.3)


def test_connection_status_names_opensearch(cluster, operator, opensearch_node):
    connect(cluster, opensearch_node)
    operator()
    obj = cluster.wait("os", lambda o: condition(o, "Ready").get("status") == "True", plural="elasticsearchconnections")
    assert obj["status"]["engine"] == "opensearch" and obj["status"]["version"] == "2.19.4"
    assert condition(obj, "Ready")["message"].startswith("OpenSearch 2.19.4 is reachable")


def test_stop_with_a_page_in_flight_ends_stopped_with_counters_frozen(cluster, operator, opensearch_node, source_index):
    node = opensearch_node
    # 1 s buckets x 3 hosts of 20,000 docs at 10 a page: ~2,000 pages, a run of well over 10 s.
    put_job(node, "op-run", source_index, enabled=True, continuous=False, page_size=10, fire_soon=True, interval="1s")
    connect(cluster, node)
    cluster.job("op-run", "started", connection="os")
    operator()
    assert cluster.wait_ready("op-run")["status"]["jobState"] == "started"
    until(lambda: metadata(node, "op-run").get("status") == "started" and metadata(node, "op-run")["stats"]["pages_processed"] > 0,
          150, "the job to run")
    cluster.set_desired("op-run", "stopped")
    obj = cluster.wait("op-run", lambda o: o["status"].get("jobState") == "stopped" and condition(o, "Ready").get("status") == "True",
                       timeout=60, what="Ready Stopped")
    assert obj["status"]["jobState"] == "stopped" and condition(obj, "Ready")["reason"] == "Stopped"
    assert doc(node, "op-run")["rollup"]["enabled"] is False
    md = metadata(node, "op-run")
    assert md["status"] == "stopped" and 0 < md["stats"]["pages_processed"] < 1500  # stopped mid-run, not finished
    time.sleep(3)
    assert metadata(node, "op-run")["stats"] == md["stats"]  # really stopped: no page moved since
    reasons = cluster.wait_events("op-run", "StopRequested", "Stopped")
    assert reasons.count("Stopped") == 1, reasons
    node.request("DELETE", "/_plugins/_rollup/jobs/op-run")


def test_a_stopped_job_is_not_stopped_again_and_a_missing_one_is_job_not_found(cluster, operator, opensearch_node, source_index):
    node = opensearch_node
    before = put_job(node, "op-still", source_index, enabled=False)["_version"]
    connect(cluster, node)
    cluster.job("op-still", "stopped", connection="os")
    cluster.job("op-none", "stopped", connection="os")
    operator()
    assert cluster.wait_ready("op-still")["status"]["jobState"] == "stopped"
    obj = cluster.wait_reason("op-none", "JobNotFound", type_="Stalled")
    assert obj["status"]["jobState"] == "absent"
    time.sleep(2)
    assert doc(node, "op-still")["_version"] == before  # no _stop was sent (each one bumps _version)
    assert doc(node, "op-none") is None
    node.request("DELETE", "/_plugins/_rollup/jobs/op-still")


def test_start_then_drift_is_corrected(cluster, operator, opensearch_node, source_index):
    node = opensearch_node
    put_job(node, "op-go", source_index, enabled=False)
    connect(cluster, node)
    cluster.job("op-go", "started", connection="os")
    operator()
    obj = cluster.wait_ready("op-go")
    assert obj["status"]["jobState"] == "started" and doc(node, "op-go")["rollup"]["enabled"] is True
    status, _ = node.request("POST", "/_plugins/_rollup/jobs/op-go/_stop")  # behind the operator's back
    assert status == 200
    until(lambda: doc(node, "op-go")["rollup"]["enabled"] is True and "DriftDetected" in cluster.event_reasons("op-go"),
          30, "the operator to start the job again")
    assert cluster.wait_ready("op-go")["status"]["jobState"] == "started"
    node.request("POST", "/_plugins/_rollup/jobs/op-go/_stop")
    node.request("DELETE", "/_plugins/_rollup/jobs/op-go")


def test_a_finished_one_shot_job_is_left_alone(cluster, operator, opensearch_node, source_index):
    node = opensearch_node
    put_job(node, "op-once", source_index, enabled=True, continuous=False, fire_soon=True)
    until(lambda: metadata(node, "op-once").get("status") == "finished", 150, "the one-shot job to finish")
    before = doc(node, "op-once")
    assert before["rollup"]["enabled"] is False  # it disabled itself
    connect(cluster, node)
    cluster.job("op-once", "started", connection="os")
    operator()
    obj = cluster.wait_ready("op-once")
    assert obj["status"]["jobState"] == "finished" and condition(obj, "Ready")["reason"] == "Finished"
    time.sleep(3)  # a sync or two
    assert doc(node, "op-once")["_version"] == before["_version"]  # never started again
    assert metadata(node, "op-once")["status"] == "finished"
    assert "DriftDetected" not in cluster.event_reasons("op-once")
    node.request("DELETE", "/_plugins/_rollup/jobs/op-once")


def test_managed_create_start_stop_and_delete(cluster, operator, opensearch_node, source_index):
    node = opensearch_node
    connect(cluster, node)
    cluster.job("op-made", "started", connection="os", config=CONFIG, deletionPolicy="Delete")
    operator()
    obj = cluster.wait_ready("op-made", timeout=30)
    assert obj["status"]["managed"] is True and obj["status"]["jobState"] == "started"
    rollup = doc(node, "op-made")["rollup"]
    assert rollup["enabled"] is True and rollup["source_index"] == "os-src" and rollup["target_index"] == "os-tgt-op"
    assert rollup["schedule"]["cron"]["expression"] == "*/5 * * * *"
    cluster.set_desired("op-made", "stopped")
    obj = cluster.wait("op-made", lambda o: o["status"].get("jobState") == "stopped" and condition(o, "Ready").get("status") == "True",
                       timeout=30, what="stopped")
    assert doc(node, "op-made")["rollup"]["enabled"] is False
    cluster.delete("op-made")
    cluster.wait_gone("op-made", timeout=30)
    assert doc(node, "op-made") is None  # deletionPolicy Delete: the server job is gone too


def test_a_managed_job_changed_on_the_server_is_put_back_in_place(cluster, operator, opensearch_node, source_index):
    """A managed job whose cron or page_size was changed on the server is updated back in place, guarded
    by the _seq_no it was read at; a change OpenSearch cannot make in place (the target index) stays a
    ConfigConflict. (A spec.config edit of those fields: the next test.)"""
    from rollup_operator.engine.opensearch import responses as osa
    from rollup_operator.job.spec import config_to_es

    node = opensearch_node
    connect(cluster, node)
    cfg = dict(CONFIG, rollupIndex="os-tgt-upd")
    cluster.job("op-upd", "started", connection="os", config=cfg, deletionPolicy="Delete")
    operator()
    assert cluster.wait_ready("op-upd", timeout=30)["status"]["managed"] is True
    d = doc(node, "op-upd")
    edited = osa.to_opensearch({**config_to_es(cfg), "cron": "0 */7 * * * ?", "page_size": 3}, enabled=True)
    status, body = node.request("PUT", f"/_plugins/_rollup/jobs/op-upd?if_seq_no={d['_seq_no']}&if_primary_term={d['_primary_term']}", edited)
    assert status == 200, body
    until(lambda: doc(node, "op-upd")["rollup"]["schedule"]["cron"]["expression"] == "*/5 * * * *", 30,
          "the operator to put the cron back")
    after = doc(node, "op-upd")
    assert after["rollup"]["page_size"] == 1000 and after["rollup"]["enabled"] is True and after["_seq_no"] > body["_seq_no"]
    reasons = cluster.wait_events("op-upd", "DriftDetected")
    assert cluster.wait_ready("op-upd")["status"]["jobState"] == "started", reasons
    moved = osa.to_opensearch({**config_to_es(cfg), "rollup_index": "os-tgt-moved"}, enabled=True)
    # the target index cannot be changed by an update: only a new job (delete + create) can do that
    status, body = node.request("DELETE", "/_plugins/_rollup/jobs/op-upd")
    assert status == 200, body
    status, body = node.request("PUT", "/_plugins/_rollup/jobs/op-upd", moved)
    assert status == 201, body
    after_put = doc(node, "op-upd")
    obj = cluster.wait_reason("op-upd", "ConfigConflict", type_="Stalled", timeout=30)
    assert "rollupIndex" in condition(obj, "Stalled")["message"]
    time.sleep(2)
    # nothing sent: the document is as put (the plugin's own metadata_id, written on the job's first
    # scheduled run, is left out: that run may fall into this window and bumps _seq_no)
    assert without_metadata_id(doc(node, "op-upd")) == without_metadata_id(after_put)
    cluster.delete("op-upd")
    cluster.wait_gone("op-upd", timeout=30)
    assert doc(node, "op-upd") is None


#: What a guarded in-place update may change in the job document (besides the plugin's metadata_id):
#: the three updatable fields, and the times every PUT of an enabled job sets.
_UPDATABLE = {"schedule", "page_size", "delay", "last_updated_time", "enabled_time"}


def test_a_spec_config_edit_of_a_managed_job_is_applied_in_place(cluster, operator, opensearch_node, source_index):
    """Admission lets spec.config.cron, pageSize and the date histogram's delay change; on OpenSearch the
    operator applies such an edit to the job it created with one PUT guarded by if_seq_no/if_primary_term:
    the same document (no delete, no re-create), the new schedule, page size and delay, Ready again for
    the new generation, an Updating event and no drift. The crons are yearly so that no scheduled run
    (the plugin's metadata_id write) falls into the test."""
    node = opensearch_node
    connect(cluster, node)
    cfg = dict(CONFIG, rollupIndex="os-tgt-edit", cron="0 0 0 1 1 ?")
    cluster.job("op-edit", "started", connection="os", config=cfg, deletionPolicy="Delete")
    operator()
    assert cluster.wait_ready("op-edit", timeout=30)["status"]["managed"] is True
    before = doc(node, "op-edit")
    assert before["rollup"]["schedule"]["cron"]["expression"] == "0 0 1 1 *" and before["rollup"]["enabled"] is True
    obj = cluster.patch("op-edit", {"spec": {"config": {"cron": "0 0 0 2 1 ?", "pageSize": 3,
                                                         "groups": {"dateHistogram": {"delay": "2m"}}}}})
    assert obj["metadata"]["generation"] == 2
    until(lambda: doc(node, "op-edit")["rollup"]["schedule"]["cron"]["expression"] == "0 0 2 1 *", 30,
          "the operator to apply the new cron")
    obj = cluster.wait_reason("op-edit", "Started", timeout=30)  # Ready for generation 2
    assert obj["status"]["jobState"] == "started" and obj["status"]["managed"] is True
    after = doc(node, "op-edit")
    r = after["rollup"]
    assert (r["page_size"], r["delay"], r["enabled"]) == (3, 120_000, True), r
    # one guarded write of the same document: _version moves by one (a delete + create would move it
    # by two), and _seq_no moved past the one the operator read
    scheduled_run = "metadata_id" in r and "metadata_id" not in before["rollup"]
    assert after["_version"] == before["_version"] + 1 + scheduled_run and after["_seq_no"] > before["_seq_no"]
    assert after["_primary_term"] == before["_primary_term"]
    unchanged = {k: v for k, v in without_metadata_id(after).items() if k not in _UPDATABLE}
    assert unchanged == {k: v for k, v in without_metadata_id(before).items() if k not in _UPDATABLE}
    reasons = cluster.wait_events("op-edit", "Updating")
    assert "DriftDetected" not in reasons and "ConfigConflict" not in reasons, reasons
    time.sleep(2)  # converged: nothing more is sent
    assert without_metadata_id(doc(node, "op-edit")) == without_metadata_id(after)
    cluster.delete("op-edit")
    cluster.wait_gone("op-edit", timeout=30)
    assert doc(node, "op-edit") is None
