"""Status and events: rebuilt each pass, written only on change, events only on transitions."""

from rollup_operator.job.status import get_condition
from rollup_operator.job.progress import advance, settle
from rollup_operator.job.decide import Progress, Verdict, Action, decide
from rollup_operator.job.spec import JobSpec
from rollup_operator.job.observations import Failure, JobObserved, StopTimedOut
from rollup_operator.job.status import job_status, transition_event, stats_to_status
from rollup_operator.kube.status_writer import applied, differs


def spec(**kw):
    base = dict(namespace="ns", name="job", uid="u", generation=3, job_id="job", connection="es", desired="stopped")
    base.update(kw)
    return JobSpec(**base)


def status_for(state, previous=None, now="2026-01-01T00:00:00Z", progress=Progress()):
    s = spec()
    obs = JobObserved(state, {"pages_processed": 2, "documents_processed": 5})
    d = decide(s, obs, progress)
    return job_status(s, d.verdict, obs, progress, previous, now), d


def test_ready_status_has_the_three_conditions_and_observed_generation():
    st, _ = status_for("stopped")
    assert st["observedGeneration"] == 3 and st["jobState"] == "stopped"
    by = {c["type"]: c for c in st["conditions"]}
    assert by["Ready"]["status"] == "True" and by["Reconciling"]["status"] == "False" and by["Stalled"]["status"] == "False"
    assert all(c["observedGeneration"] == 3 for c in st["conditions"])
    assert st["stats"] == {"pagesProcessed": 2, "documentsProcessed": 5}


def test_same_world_twice_means_no_write():
    first, _ = status_for("stopped")
    again, _ = status_for("stopped", previous=first, now="2026-01-01T00:05:00Z")
    assert not differs(first, again)


def test_transition_time_moves_only_when_status_flips():
    stopping, _ = status_for("indexing", now="2026-01-01T00:00:00Z")
    stopping2, _ = status_for("stopping", previous=stopping, now="2026-01-01T00:00:10Z")
    assert get_condition(stopping2["conditions"], "Ready")["lastTransitionTime"] == "2026-01-01T00:00:00Z"
    stopped, _ = status_for("stopped", previous=stopping2, now="2026-01-01T00:00:20Z")
    assert get_condition(stopped["conditions"], "Ready")["lastTransitionTime"] == "2026-01-01T00:00:20Z"


def test_a_field_that_no_longer_applies_is_a_change_and_is_left_out_of_the_applied_status():
    stored, wanted = {"stopAttempts": 2, "jobState": "stopped"}, {"stopAttempts": None, "jobState": "stopped"}
    assert differs(stored, wanted)
    assert applied(wanted) == {"jobState": "stopped"}
    assert not differs({"jobState": "stopped"}, wanted)


def test_events_on_transitions_only():
    s = spec()
    started, _ = status_for("started")
    d = decide(s, JobObserved("indexing"), Progress())
    ev = transition_event({}, s, d.verdict, Progress())
    assert ev == ("Normal", "StopRequested", d.verdict.message)
    stopping, _ = status_for("indexing")
    assert transition_event(stopping, s, d.verdict, Progress()) is None  # same reason: no event


def test_first_stop_timeout_gives_one_event_later_ones_none():
    s = spec()
    stopping, _ = status_for("indexing")
    p1 = advance(Progress(), Action("stop"), StopTimedOut("stopping"))
    d = decide(s, JobObserved("stopping"), p1)
    assert transition_event(stopping, s, d.verdict, p1)[1] == "StopTimedOut"
    p2 = advance(p1, Action("stop"), StopTimedOut("stopping"))
    assert transition_event(stopping, s, decide(s, JobObserved("stopping"), p2).verdict, p2) is None


def test_drift_is_named_when_the_decision_says_so():
    s = spec()
    ready, _ = status_for("stopped")
    p = settle(Progress(), JobObserved("stopped"), decide(s, JobObserved("stopped"), Progress()))
    d = decide(s, JobObserved("started"), p)
    assert d.drift
    type_, reason, msg = transition_event(ready, s, d.verdict, p, d.drift)
    assert (type_, reason) == ("Warning", "DriftDetected") and "started" in msg


def test_an_outage_of_a_ready_job_is_its_failure_reason_not_drift():
    s = spec()
    ready, _ = status_for("stopped")
    p = settle(Progress(), JobObserved("stopped"), decide(s, JobObserved("stopped"), Progress()))
    d = decide(s, Failure("ElasticsearchUnavailable", "cannot reach Elasticsearch"), p)
    assert not d.drift
    assert transition_event(ready, s, d.verdict, p, d.drift)[:2] == ("Warning", "ElasticsearchUnavailable")


def test_stalled_reasons_are_warnings():
    s = spec()
    v = Verdict("Stalled", "Forbidden", "action [...] is unauthorized", "unknown")
    assert transition_event({}, s, v, Progress())[0] == "Warning"


def test_stats_are_camel_case_integers():
    assert stats_to_status({"index_time_in_ms": 7, "trigger_count": 1, "junk": "x"}) == {"indexTimeInMs": 7, "triggerCount": 1}


def test_nested_objects_are_written_whole_not_merged():
    # The case the merge-patch writer got wrong: stored stats {pagesProcessed: 1, indexFailures: 2},
    # wanted {pagesProcessed: 3}. A whole-status apply stores exactly the wanted stats.
    stored = {"jobState": "indexing", "stats": {"pagesProcessed": 1, "indexFailures": 2}}
    wanted = {"jobState": "indexing", "stats": {"pagesProcessed": 3}}
    assert differs(stored, wanted)
    assert applied(wanted)["stats"] == {"pagesProcessed": 3}


# --- status.migration (migration.py): from the server's config, else spec.config ----------------

ES_CONFIG = {"index_pattern": "src", "rollup_index": "dst", "cron": "0 0 * * * ?", "page_size": 10,
             "groups": {"date_histogram": {"field": "ts", "fixed_interval": "1h"}},
             "metrics": [{"field": "v", "metrics": ["min", "max"]}]}


def test_migration_comes_from_the_observed_config_else_the_spec_and_is_stable():
    from rollup_operator.migration.plan import status_migration
    from rollup_operator.job.observations import Failure, JobAbsent

    s = spec()
    observed = JobObserved("stopped", {}, ES_CONFIG)
    d = decide(s, observed, Progress())
    st = job_status(s, d.verdict, observed, Progress(), None, "2026-01-01T00:00:00Z")
    assert st["migration"] == status_migration(ES_CONFIG) and "downsampleable" in st["migration"]
    again = job_status(s, d.verdict, observed, Progress(), st, "2026-01-01T00:05:00Z")
    assert not differs(st, again)  # deterministic: no spurious write
    # the server has no job: a managed job's spec.config (already Elasticsearch-shaped)
    managed = spec(config={**ES_CONFIG, "groups": {"date_histogram": {"field": "ts", "calendar_interval": "1d"}}})
    st2 = job_status(managed, d.verdict, JobAbsent(), Progress(), None, "2026-01-01T00:00:00Z")
    assert st2["migration"] == status_migration(managed.config) != st["migration"]
    # nothing known: unset; the server could not be asked: the last value stays
    assert job_status(s, d.verdict, JobAbsent(), Progress(), None, "2026-01-01T00:00:00Z")["migration"] is None
    down = Failure("ElasticsearchUnavailable", "down")
    assert job_status(s, d.verdict, down, Progress(), st, "2026-01-01T00:00:00Z")["migration"] == st["migration"]


def test_connecting_is_said_only_while_nothing_is_known_of_this_generation():
    from rollup_operator.job.status import awaits_first_answer, connecting_status
    assert awaits_first_answer(None, 3) and awaits_first_answer({}, 3)
    ready, _ = status_for("stopped")
    assert not awaits_first_answer(ready, 3)  # a converged job does not flip to Connecting on a slow read
    assert awaits_first_answer(ready, 4)  # a new generation: nothing is known of it yet
    st = connecting_status(spec(), "the answer to GET / (sent 2026-01-01T00:00:00Z, given up after requestTimeout (30s))",
                           Progress(), ready, "2026-01-01T00:01:00Z")
    by = {c["type"]: c for c in st["conditions"]}
    assert (by["Ready"]["status"], by["Reconciling"]["status"], by["Stalled"]["status"]) == ("False", "True", "False")
    assert by["Ready"]["reason"] == "Connecting" and "ElasticsearchConnection ns/es: the answer to GET /" in by["Reconciling"]["message"]
    assert st["jobState"] == "stopped" and st["stats"] == ready["stats"]  # the last known, not blanked
    assert awaits_first_answer(st, 3)  # still connecting: said again if the next look is silent too
    assert transition_event(ready, spec(), Verdict("Progressing", "Connecting", "m", "stopped"), Progress()) is None


def test_a_connections_connecting_status_keeps_what_was_known():
    from rollup_operator.job.status import connection_connecting_status
    prev = {"observedGeneration": 1, "version": "8.17.0", "conditions": []}
    st = connection_connecting_status(2, "the answer to GET /", prev, "2026-01-01T00:00:00Z")
    by = {c["type"]: c for c in st["conditions"]}
    assert st["observedGeneration"] == 2 and st["version"] == "8.17.0"
    assert by["Ready"]["reason"] == "Connecting" and by["Reconciling"]["status"] == "True"
    assert by["Reconciling"]["message"] == "waiting for the server: the answer to GET /"


def test_publication_is_the_status_and_transition_event_and_the_takeover_event_of_a_former_duplicate():
    from rollup_operator.job.status import publication

    s, obs, now = spec(), JobObserved("stopped"), "2026-01-01T00:00:00Z"
    d = decide(s, obs, Progress())
    pub = publication(s, d, obs, Progress(), {}, now, acting_owner=True)
    assert pub.resolved is None
    assert pub.status == job_status(s, d.verdict, obs, Progress(), {}, now)
    assert pub.event == transition_event({}, s, d.verdict, Progress(), d.drift)
    duplicate = {"conditions": [{"type": "Ready", "status": "False", "reason": "DuplicateJob"}]}
    assert publication(s, d, obs, Progress(), duplicate, now, acting_owner=True).resolved[1] == "DuplicateResolved"
    assert publication(s, d, obs, Progress(), duplicate, now, acting_owner=False).resolved is None
