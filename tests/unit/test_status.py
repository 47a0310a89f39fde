"""Status and events: rebuilt each pass, written only on change, events only on transitions."""

from rollup_operator import conditions as cond
from rollup_operator.decide import Progress, Verdict, advance, Action, decide
from rollup_operator.model import JobSpec
from rollup_operator.observations import JobObserved, StopTimedOut
from rollup_operator.status import job_status, status_patch, transition_event, stats_to_status


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
    assert status_patch(first, again) is None


def test_transition_time_moves_only_when_status_flips():
    stopping, _ = status_for("indexing", now="2026-01-01T00:00:00Z")
    stopping2, _ = status_for("stopping", previous=stopping, now="2026-01-01T00:00:10Z")
    assert cond.get(stopping2["conditions"], "Ready")["lastTransitionTime"] == "2026-01-01T00:00:00Z"
    stopped, _ = status_for("stopped", previous=stopping2, now="2026-01-01T00:00:20Z")
    assert cond.get(stopped["conditions"], "Ready")["lastTransitionTime"] == "2026-01-01T00:00:20Z"


def test_patch_removes_fields_that_no_longer_apply():
    assert status_patch({"stopAttempts": 2, "jobState": "stopped"}, {"stopAttempts": None, "jobState": "stopped"}) == {"stopAttempts": None}


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


def test_drift_from_a_ready_job_is_named():
    s = spec()
    ready, _ = status_for("stopped")
    d = decide(s, JobObserved("started"), Progress())
    type_, reason, msg = transition_event(ready, s, d.verdict, Progress())
    assert (type_, reason) == ("Warning", "DriftDetected") and "started" in msg


def test_stalled_reasons_are_warnings():
    s = spec()
    v = Verdict("Stalled", "Forbidden", "action [...] is unauthorized", "unknown")
    assert transition_event({}, s, v, Progress())[0] == "Warning"


def test_stats_are_camel_case_integers():
    assert stats_to_status({"index_time_in_ms": 7, "trigger_count": 1, "junk": "x"}) == {"indexTimeInMs": 7, "triggerCount": 1}


def test_merged_patches_have_the_effect_of_applying_both_in_order():
    from rollup_operator.status import merge_patches

    stored = {"jobState": "indexing", "stats": {"a": 1, "b": 2}, "stopAttempts": 3, "message": "x"}

    def apply(doc, patch):
        out = dict(doc)
        for k, v in patch.items():
            if v is None:
                out.pop(k, None)
            elif isinstance(v, dict) and isinstance(out.get(k), dict):
                out[k] = apply(out[k], v)
            else:
                out[k] = v
        return out

    p1 = {"jobState": "stopping", "stats": {"a": 5}, "stopAttempts": None, "message": "stopping"}
    p2 = {"jobState": "stopped", "stats": {"b": 7}, "message": "stopped", "stopAttempts": 1}
    assert apply(stored, merge_patches(p1, p2)) == apply(apply(stored, p1), p2)


def test_apply_patch_is_what_the_server_makes_of_a_status_patch():
    from rollup_operator.status import apply_patch

    before = {"jobState": "stopping", "stopAttempts": 2, "message": "m"}
    wanted = {"jobState": "stopped", "stopAttempts": None, "message": "m"}
    assert apply_patch(before, status_patch(before, wanted)) == {"jobState": "stopped", "message": "m"}
    assert before["stopAttempts"] == 2  # the input is not changed
