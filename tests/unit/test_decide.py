"""The decision table, one test per rule (docs/reconciliation.md, "The decision rules")."""

from dataclasses import replace

import pytest

from rollup_operator.job.progress import advance, observation_after
from rollup_operator.job.decide import PROGRESSING, READY, STALLED, SUSPENDED, Action, Progress, decide
from rollup_operator.job.spec import Backoff, JobSpec
from rollup_operator.job.status import transition_event
from rollup_operator.job.observations import (
    Done, Failure, JobAbsent, JobObserved, Refused, StopTimedOut, WrongState,
)


def spec(**kw) -> JobSpec:
    base = dict(namespace="ns", name="job", uid="u", generation=1, job_id="job", connection="es", desired="stopped")
    base.update(kw)
    return JobSpec(**base)


def seen(state, config=None):
    return JobObserved(state, {"pages_processed": 1}, config)


CONFIG = {
    "index_pattern": "src-*", "rollup_index": "dst", "cron": "*/30 * * * * ?", "page_size": 10,
    "groups": {"date_histogram": {"field": "ts", "fixed_interval": "1h", "time_zone": "UTC"}},
    "metrics": [{"field": "v", "metrics": ["min", "max"]}], "timeout": "20s",
}


@pytest.mark.parametrize("state", ["started", "indexing", "stopping"])
def test_desired_stopped_and_running_job_is_stopped(state):
    d = decide(spec(), seen(state), Progress())
    assert d.action == Action("stop")
    assert (d.verdict.phase, d.verdict.reason, d.verdict.job_state) == (PROGRESSING, "Stopping", state)


def test_stopping_a_stopped_job_is_a_quiet_no_op():
    d = decide(spec(), seen("stopped"), Progress())
    assert d.action is None and d.requeue_after is None
    assert (d.verdict.phase, d.verdict.reason, d.verdict.job_state) == (READY, "Stopped", "stopped")


def test_timeout_while_stopping_retries_at_once_and_says_so():
    p = advance(Progress(), Action("stop"), StopTimedOut("stopping"))
    obs = observation_after(Action("stop"), StopTimedOut("stopping"), seen("indexing"))
    assert obs == JobObserved("stopping")
    d = decide(spec(stop_timeout="5s"), obs, p)
    assert d.action == Action("stop") and d.requeue_after is None
    assert d.verdict.reason == "Stopping"
    assert "did not complete within 5s" in d.verdict.message and "attempt 2" in d.verdict.message


def test_timeout_while_stopping_retries_without_backoff_growth():
    p = Progress()
    for _ in range(5):
        p = advance(p, Action("stop"), StopTimedOut("stopping"))
    assert p.failures == 0 and p.stop_attempts == 5 and p.stop_timeouts == 5


def test_successful_stop_is_confirmed_by_a_read():
    assert observation_after(Action("stop"), Done(), seen("indexing")) is None


def test_aborting_job_is_waited_on_not_stopped():
    d = decide(spec(), seen("aborting"), Progress())
    assert d.action.kind == "wait" and d.action.state == "aborting"
    assert d.verdict.phase == PROGRESSING


@pytest.mark.parametrize("state", ["started", "indexing"])
def test_desired_started_and_running_is_ready_without_a_call(state):
    d = decide(spec(desired="started"), seen(state), Progress())
    assert d.action is None and d.verdict.phase == READY and d.verdict.reason == "Started"


def test_desired_started_and_stopped_job_is_started():
    d = decide(spec(desired="started"), seen("stopped"), Progress())
    assert d.action == Action("start") and d.verdict.reason == "Starting"


def test_start_while_stopping_waits_for_the_stop_to_finish():
    out = WrongState("stopping", "Cannot start task for Rollup Job [job] because state was [STOPPING]")
    p = advance(Progress(), Action("start"), out)
    obs = observation_after(Action("start"), out, seen("stopped"))
    d = decide(spec(desired="started"), obs, p)
    assert d.action.kind == "wait" and d.action.state == "stopping"
    assert d.verdict.reason == "WaitingForStop"


def test_missing_job_without_config_is_stalled_job_not_found():
    d = decide(spec(), JobAbsent(), Progress())
    assert d.action is None and d.verdict.phase == STALLED and d.verdict.reason == "JobNotFound"
    assert d.verdict.job_state == "absent"


def test_missing_job_with_config_is_created():
    d = decide(spec(config=CONFIG), JobAbsent(), Progress())
    assert d.action == Action("create") and d.verdict.reason == "Creating"


def test_refused_create_is_stalled_with_the_servers_reason():
    out = Refused("RollupUsageRequired", "new rollup jobs are not allowed ...")
    p = advance(Progress(), Action("create"), out)
    d = decide(spec(config=CONFIG), observation_after(Action("create"), out, JobAbsent()), p)
    assert d.action is None and d.verdict.phase == STALLED and d.verdict.reason == "RollupUsageRequired"


def test_existing_job_with_same_config_is_adopted():
    server = dict(CONFIG, id="job")
    d = decide(spec(config=CONFIG, desired="stopped"), seen("stopped", server), Progress())
    assert d.verdict.phase == READY


def test_existing_job_with_other_config_is_a_conflict_naming_the_fields():
    server = dict(CONFIG, id="job", cron="0 * * * * ?", page_size=99)
    d = decide(spec(config=CONFIG), seen("started", server), Progress())
    assert d.action is None and d.verdict.reason == "ConfigConflict"
    assert "cron" in d.verdict.message and "pageSize" in d.verdict.message


@pytest.mark.parametrize("kind,phase", [
    ("ElasticsearchUnavailable", PROGRESSING), ("TLSError", PROGRESSING),
    ("Unauthorized", STALLED), ("Forbidden", STALLED), ("NotElasticsearch", STALLED),
    ("ConnectionNotFound", STALLED), ("SecretNotAllowed", STALLED), ("SecretKeyNotFound", STALLED), ("SecretUnreadable", STALLED),
    ("UnsupportedVersion", STALLED),
])
def test_failures_map_to_their_reason(kind, phase):
    d = decide(spec(), Failure(kind, "details"), Progress())
    assert d.verdict.reason == kind and d.verdict.phase == phase and d.action is None
    assert d.verdict.job_state == "unknown"
    if phase == PROGRESSING:
        assert d.requeue_after == 1.0
    else:
        assert d.requeue_after is None


def test_transient_failures_back_off_exponentially_up_to_the_cap():
    s = spec(backoff=Backoff(1.0, 8.0))
    p = Progress()
    delays = []
    for _ in range(6):
        d = decide(s, Failure("ElasticsearchUnavailable", "down"), p)
        delays.append(d.requeue_after)
        p = advance(p, Action("stop"), Failure("ElasticsearchUnavailable", "down"))
    assert delays == [1, 2, 4, 8, 8, 8]


def test_suspended_job_is_observed_but_never_touched():
    d = decide(spec(suspend=True), seen("started"), Progress())
    assert d.action is None and d.verdict.phase == SUSPENDED and not d.verdict.in_desired_state
    d = decide(spec(suspend=True), seen("stopped"), Progress())
    assert d.verdict.in_desired_state


def test_delete_policy_adds_the_finalizer_first():
    d = decide(spec(deletion_policy="Delete"), seen("stopped"), Progress())
    assert d.action == Action("add_finalizer")


def test_retain_policy_removes_a_leftover_finalizer():
    d = decide(spec(deletion_policy="Retain", has_finalizer=True), seen("stopped"), Progress())
    assert d.action == Action("remove_finalizer")


def _deleting(**kw):
    return spec(deletion_policy="Delete", has_finalizer=True, deleting=True, **kw)


def test_deletion_stops_a_running_job_before_deleting():
    d = decide(_deleting(), seen("indexing"), Progress())
    assert d.action == Action("stop") and "before deletion" in d.verdict.message


def test_deletion_deletes_only_a_stopped_job():
    assert decide(_deleting(), seen("stopped"), Progress()).action == Action("delete")
    for state in ("started", "indexing", "stopping", "aborting"):
        assert decide(_deleting(), seen(state), Progress()).action != Action("delete")


def test_deletion_releases_the_finalizer_once_the_job_is_gone():
    assert observation_after(Action("delete"), Done(), seen("stopped")) == JobAbsent()
    assert decide(_deleting(), JobAbsent(), Progress()).action == Action("remove_finalizer")


def test_deletion_keeps_the_finalizer_while_the_server_is_unreachable():
    d = decide(_deleting(), Failure("ElasticsearchUnavailable", "connection refused"), Progress())
    assert d.action is None and d.verdict.reason == "DeletionBlocked" and d.requeue_after
    assert "rollup.esops.dev/release-finalizer" in d.verdict.message


def test_release_annotation_lets_go_without_touching_the_server():
    d = decide(_deleting(release_finalizer=True), seen("started"), Progress())
    assert d.action == Action("remove_finalizer") and d.verdict.reason == "FinalizerReleased"


def test_retain_policy_never_deletes():
    d = decide(spec(deletion_policy="Retain", has_finalizer=True, deleting=True), seen("stopped"), Progress())
    assert d.action == Action("remove_finalizer")
    d = decide(spec(deletion_policy="Retain", deleting=True), seen("stopped"), Progress())
    assert d.action is None


def test_delete_refused_because_job_restarted_goes_back_to_stopping():
    out = WrongState("started", "Could not delete job [job] because indexer state is [STARTED].")
    obs = observation_after(Action("delete"), out, seen("stopped"))
    assert decide(_deleting(), obs, advance(Progress(), Action("delete"), out)).action == Action("stop")


def test_failed_reads_count_toward_backoff_and_a_good_read_ends_the_streak():
    from rollup_operator.job.progress import read_failed, read_succeeded

    p = Progress()
    for _ in range(3):
        p = read_failed(p)
    assert p.failures == 3
    assert decide(spec(backoff=Backoff(1.0, 60.0)), Failure("ElasticsearchUnavailable", "down"), p).requeue_after == 8.0
    assert read_succeeded(p).failures == 0


# --- drift: a change seen between two successful observations, never an outage --------------------


def _converged(s, state):
    from rollup_operator.job.progress import settle
    return settle(Progress(), seen(state), decide(s, seen(state), Progress()))


def test_an_unreachable_server_is_not_drift_and_its_return_is_not_either():
    from rollup_operator.job.progress import settle
    s = spec()
    p = _converged(s, "stopped")
    assert p.converged == "stopped"
    down = Failure("ElasticsearchUnavailable", "cannot reach Elasticsearch")
    d = decide(s, down, p)
    assert not d.drift and d.verdict.reason == "ElasticsearchUnavailable"
    p = settle(p, down, d)
    assert p.converged == "stopped"  # not knowing is not a change
    d = decide(s, seen("stopped"), p)
    assert not d.drift and d.verdict.phase == READY


def test_a_change_during_an_outage_is_drift_when_the_server_answers_again():
    from rollup_operator.job.progress import settle
    s = spec()
    p = _converged(s, "stopped")
    down = Failure("ElasticsearchUnavailable", "x")
    p = settle(p, down, decide(s, down, p))
    d = decide(s, seen("started"), p)
    assert d.drift and d.action == Action("stop")


def test_drift_is_announced_once_then_the_correction_converges_again():
    from rollup_operator.job.progress import settle
    s = spec(desired="started")
    p = _converged(s, "indexing")
    d = decide(s, seen("stopped"), p)
    assert d.drift and d.action == Action("start")
    p = settle(p, seen("stopped"), d)
    assert p.converged is None
    assert not decide(s, seen("stopped"), p).drift  # the same contradiction again is not news
    assert not decide(s, seen("started"), p).drift


def test_no_drift_before_convergence_while_suspended_or_deleting():
    s = spec()
    assert not decide(s, seen("started"), Progress()).drift  # the operator has not converged it yet
    p = _converged(s, "stopped")
    assert not decide(spec(suspend=True), seen("started"), p).drift
    assert not decide(spec(deleting=True, has_finalizer=True, deletion_policy="Delete"), seen("started"), p).drift
    assert decide(s, JobAbsent(), p).drift  # vanished behind the operator's back


def test_a_stop_abandoned_in_flight_counts_as_an_attempt():
    from rollup_operator.job.progress import stop_abandoned
    p = advance(Progress(), Action("stop"), StopTimedOut("stopping"))
    assert stop_abandoned(p).stop_attempts == 2


# --- OpenSearch's end states (engine/opensearch/responses.py): finished and failed ----------------

@pytest.mark.parametrize("desired", ["started", "stopped"])
def test_a_finished_one_shot_job_is_ready_and_left_alone(desired):
    d = decide(spec(desired=desired), seen("finished"), Progress())
    assert d.action is None and d.requeue_after is None
    assert (d.verdict.phase, d.verdict.reason, d.verdict.job_state) == (READY, "Finished", "finished")
    assert d.verdict.in_desired_state


def test_a_finished_job_is_not_drift_after_convergence():
    s = spec(desired="started")
    p = _converged(s, "started")
    d = decide(s, seen("finished"), p)
    assert not d.drift and d.action is None


@pytest.mark.parametrize("desired", ["started", "stopped"])
def test_a_failed_job_is_stalled_with_the_servers_reason(desired):
    obs = JobObserved("failed", {}, None, reason="failed to search source index [x]")
    d = decide(spec(desired=desired), obs, Progress())
    assert d.action is None
    assert (d.verdict.phase, d.verdict.reason, d.verdict.job_state) == (STALLED, "JobFailed", "failed")
    assert "failed to search source index [x]" in d.verdict.message


@pytest.mark.parametrize("state", ["finished", "failed"])
def test_deletion_deletes_a_finished_or_failed_job_at_once(state):
    assert decide(_deleting(), seen(state), Progress()).action == Action("delete")


def test_a_suspended_finished_job_counts_as_in_its_desired_state():
    d = decide(spec(desired="started", suspend=True), seen("finished"), Progress())
    assert d.verdict.phase == SUSPENDED and d.verdict.in_desired_state


# --- OpenSearch's in-place update (JobObserved.seq: the server updates a job guarded by it) -------

def _es(**kw):
    from rollup_operator.job.spec import config_to_es
    return {**config_to_es({"indexPattern": "src-*", "rollupIndex": "dst", "cron": "0 */5 * * * ?", "pageSize": 10,
                            "groups": {"dateHistogram": {"field": "ts", "fixedInterval": "1h"}},
                            "metrics": [{"field": "v", "metrics": ["min", "max"]}]}), **kw}


def _job_with(config_on_server, seq=(4, 1)):
    return JobObserved("started", {}, config_on_server, seq=seq)


def test_a_managed_opensearch_job_whose_schedule_differs_is_updated_in_place():
    d = decide(spec(desired="started", config=_es()), _job_with(_es(cron="0 */7 * * * ?", page_size=3)), Progress(created=True))
    assert d.action == Action("update") and (d.verdict.phase, d.verdict.reason) == (PROGRESSING, "Updating")
    assert "cron" in d.verdict.message and "pageSize" in d.verdict.message


@pytest.mark.parametrize("why", ["not managed", "no seq (Elasticsearch)", "an immutable field", "refused before"])
def test_other_config_differences_stay_a_config_conflict(why):
    server, p, seq = _es(cron="0 */7 * * * ?"), Progress(created=True), (4, 1)
    if why == "not managed":
        p = Progress(created=False)
    elif why == "no seq (Elasticsearch)":
        seq = None
    elif why == "an immutable field":
        server = _es(rollup_index="elsewhere")
    else:
        p = replace(p, last_outcome=Refused("InvalidConfig", "Not allowed to modify [target_index]"), last_action="update")
    d = decide(spec(desired="started", config=_es()), _job_with(server, seq), p)
    assert d.action is None and (d.verdict.phase, d.verdict.reason) == (STALLED, "ConfigConflict")


def test_an_edit_opensearch_cannot_run_is_invalid_spec_to_correct_not_a_config_conflict():
    """An edited delay or cron that OpenSearch cannot express is refused before any request (the
    gateway's update answers Refused InvalidSpec): the job is Stalled InvalidSpec, to be corrected in
    spec.config (admission lets cron, pageSize and delay change), not a ConfigConflict asking for a new job."""
    p = replace(Progress(created=True), last_action="update",
                last_outcome=Refused("InvalidSpec", "the edited spec.config cannot be an OpenSearch rollup job: delay 2w"))
    d = decide(spec(desired="started", config=_es()), _job_with(_es(cron="0 */7 * * * ?")), p)
    assert d.action is None and (d.verdict.phase, d.verdict.reason) == (STALLED, "InvalidSpec")
    assert "correct it in spec.config" in d.verdict.message and "new jobId" not in d.verdict.message


# --- A spec.config edit (a new generation): admission lets cron, pageSize and delay change ----------

_CRD_CONFIG = {"indexPattern": "src-*", "rollupIndex": "dst", "cron": "0 */5 * * * ?", "pageSize": 10,
               "groups": {"dateHistogram": {"field": "ts", "fixedInterval": "1h"}},
               "metrics": [{"field": "v", "metrics": ["min", "max"]}]}


def _rollupjob(generation, config, status=None):
    return {"apiVersion": "rollup.esops.dev/v1alpha1", "kind": "RollupJob",
            "metadata": {"namespace": "ns", "name": "job", "uid": "u", "resourceVersion": str(generation), "generation": generation},
            "spec": {"connectionRef": {"name": "es"}, "desiredState": "started", "config": config}, "status": status or {}}


_READY_STARTED = {"jobState": "started", "conditions": [{"type": "Ready", "status": "True", "reason": "Started"}]}
_EDITED = {**_CRD_CONFIG, "cron": "0 */7 * * * ?", "pageSize": 3,
           "groups": {"dateHistogram": {"field": "ts", "fixedInterval": "1h", "delay": "2m"}}}


def _after_edit(store_history: str):
    """The job's entry once spec.config was edited (generation 2), as the store builds it: created by
    this process (``advance`` of a create), or found by a restarted one in status.managed."""
    from rollup_operator.job.store import Store

    store = Store()
    if store_history == "created here":
        entry = store.put_job(_rollupjob(1, _CRD_CONFIG), 0.0)
        assert entry is not None
        entry.progress = advance(entry.progress, Action("create"), Done())
        entry = store.put_job(_rollupjob(2, _EDITED, {"managed": True, "observedGeneration": 1}), 1.0)
    elif store_history == "restarted, status.managed":
        entry = store.put_job(_rollupjob(2, _EDITED, {"managed": True, "observedGeneration": 1}), 1.0)
    else:  # adopted: the job existed with this config, the operator never created it
        entry = store.put_job(_rollupjob(1, _CRD_CONFIG), 0.0)
        entry = store.put_job(_rollupjob(2, _EDITED, {"observedGeneration": 1}), 1.0)
    assert entry is not None and entry.spec is not None and entry.progress.generation == 2
    return entry


@pytest.mark.parametrize("history", ["created here", "restarted, status.managed"])
def test_a_spec_edit_of_cron_page_size_and_delay_updates_a_managed_opensearch_job_in_place(history):
    entry = _after_edit(history)
    d = decide(entry.spec, _job_with(_es(), seq=(4, 1)), entry.progress)
    assert d.action == Action("update") and (d.verdict.phase, d.verdict.reason) == (PROGRESSING, "Updating")
    assert "cron, groups.dateHistogram.delay, pageSize" in d.verdict.message and not d.drift
    assert transition_event(_READY_STARTED, entry.spec, d.verdict, entry.progress, d.drift)[:2] == ("Normal", "Updating")
    # the update lands; the next read shows the new config: Ready again
    p = advance(entry.progress, Action("update"), Done())
    assert decide(entry.spec, _job_with(dict(entry.spec.config), seq=(5, 1)), p).verdict.reason == "Started"


@pytest.mark.parametrize("history", ["created here", "restarted, status.managed"])
def test_a_spec_edit_of_cron_on_elasticsearch_is_a_config_conflict_that_touches_nothing(history):
    entry = _after_edit(history)
    d = decide(entry.spec, _job_with(_es(), seq=None), entry.progress)
    assert d.action is None and (d.verdict.phase, d.verdict.reason) == (STALLED, "ConfigConflict")
    assert "(cron, groups.dateHistogram.delay, pageSize)" in d.verdict.message
    assert "Elasticsearch cannot update a rollup job in place" in d.verdict.message
    assert "create a new RollupJob with a new jobId" in d.verdict.message
    assert transition_event(_READY_STARTED, entry.spec, d.verdict, entry.progress, d.drift) == (
        "Warning", "ConfigConflict", d.verdict.message)


def test_a_spec_edit_of_an_adopted_opensearch_job_is_a_config_conflict():
    entry = _after_edit("adopted")
    assert not entry.progress.created
    d = decide(entry.spec, _job_with(_es(), seq=(4, 1)), entry.progress)
    assert d.action is None and (d.verdict.phase, d.verdict.reason) == (STALLED, "ConfigConflict")
    assert "of a job the operator created" in d.verdict.message and "create a new RollupJob with a new jobId" in d.verdict.message


def test_a_standby_learns_that_the_job_is_managed_from_the_status_the_leader_writes():
    """A status-only change (same generation) still tells the store the operator created the job, so
    after a failover the new leader updates an edited managed job in place as the old one would."""
    from rollup_operator.job.store import Store

    store = Store()
    entry = store.put_job(_rollupjob(1, _CRD_CONFIG), 0.0)
    assert entry is not None and not entry.progress.created
    body = _rollupjob(1, _CRD_CONFIG, {"managed": True, "observedGeneration": 1})
    body["metadata"]["resourceVersion"] = "5"
    store.put_job(body, 1.0)
    assert entry.progress.created
    entry = store.put_job(_rollupjob(6, _EDITED, {"managed": True, "observedGeneration": 1}), 2.0)
    assert entry is not None and entry.progress.created and entry.progress.generation == 6
