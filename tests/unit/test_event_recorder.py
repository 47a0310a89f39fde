"""The event recorder (event_recorder.py): client-go's correlation, on a fake clock and an in-memory
Events API that answers as the API server does (names, counts, 404 for an Event that is gone)."""

import pytest

from rollup_operator.kube.events import COMBINED_PREFIX, EventRecorder


class Clock:
    def __init__(self, t=1_800_000_000.0):
        self.t = t

    def __call__(self):
        return self.t


class EventsAPI:
    def __init__(self):
        self.events: dict[str, dict] = {}
        self.calls: list[tuple[str, str]] = []
        self.fail_next = 0

    async def create_event(self, ns, body):
        self.calls.append(("create", body["metadata"]["name"]))
        if self.fail_next:
            self.fail_next -= 1
            raise ConnectionError("refused")
        assert body["metadata"]["name"] not in self.events
        self.events[body["metadata"]["name"]] = dict(body)
        return dict(body)

    async def patch_event(self, ns, name, patch):
        self.calls.append(("patch", name))
        if name not in self.events:
            return None
        self.events[name].update(patch)
        return dict(self.events[name])


JOB = {"kind": "RollupJob", "namespace": "ns", "name": "j", "uid": "u1"}
OTHER = {"kind": "RollupJob", "namespace": "ns", "name": "k", "uid": "u2"}


@pytest.fixture
def rec():
    api, clock = EventsAPI(), Clock()
    return EventRecorder(api, component="rollup-operator", instance="pod-1", api_version="rollup.esops.dev/v1alpha1",
                         clock=clock), api, clock


async def test_a_repeat_is_a_count_and_lastTimestamp_on_the_same_event(rec):
    r, api, clock = rec
    await r.record(JOB, "Warning", "ElasticsearchUnavailable", "cannot reach Elasticsearch")
    for _ in range(29):
        clock.t += 2
        await r.record(JOB, "Warning", "ElasticsearchUnavailable", "cannot reach Elasticsearch")
    assert len(api.events) == 1
    (ev,) = api.events.values()
    assert ev["count"] == 30
    assert ev["firstTimestamp"] == "2027-01-15T08:00:00Z" and ev["lastTimestamp"] == "2027-01-15T08:00:58Z"
    assert [c[0] for c in api.calls] == ["create"] + ["patch"] * 29
    assert ev["involvedObject"] == {"apiVersion": "rollup.esops.dev/v1alpha1", "kind": "RollupJob", "namespace": "ns",
                                    "name": "j", "uid": "u1"}
    assert ev["source"] == {"component": "rollup-operator", "host": "pod-1"}


async def test_the_key_is_object_type_reason_and_message(rec):
    r, api, clock = rec
    await r.record(JOB, "Normal", "Stopped", "rollup job [j] is stopped")
    await r.record(OTHER, "Normal", "Stopped", "rollup job [j] is stopped")  # another object
    await r.record(JOB, "Warning", "Stopped", "rollup job [j] is stopped")  # another type
    await r.record(JOB, "Normal", "Started", "rollup job [j] is stopped")  # another reason
    await r.record(JOB, "Normal", "Stopped", "rollup job [j] is stopping")  # another message
    assert len(api.events) == 5 and all(e["count"] == 1 for e in api.events.values())
    await r.record(JOB, "Normal", "Stopped", "rollup job [j] is stopped")
    assert len(api.events) == 5 and sorted(e["count"] for e in api.events.values()) == [1, 1, 1, 1, 2]


async def test_alternating_events_each_keep_their_own_count(rec):
    r, api, clock = rec
    for _ in range(30):  # Elasticsearch flapping: the two transitions alternate
        clock.t += 1
        await r.record(JOB, "Warning", "ElasticsearchUnavailable", "cannot reach Elasticsearch")
        clock.t += 1
        await r.record(JOB, "Normal", "Stopped", "rollup job [j] is stopped")
    assert sorted((e["reason"], e["count"]) for e in api.events.values()) == [("ElasticsearchUnavailable", 30), ("Stopped", 30)]


async def test_an_event_that_is_gone_is_created_anew(rec):
    r, api, clock = rec
    await r.record(JOB, "Normal", "Stopped", "m")
    api.events.clear()  # expired (--event-ttl) or deleted by someone
    clock.t += 4000
    await r.record(JOB, "Normal", "Stopped", "m")
    assert [c[0] for c in api.calls] == ["create", "patch", "create"]
    (ev,) = api.events.values()
    assert ev["count"] == 1
    clock.t += 1
    await r.record(JOB, "Normal", "Stopped", "m")
    assert len(api.events) == 1 and ev["count"] == 2


async def test_a_failed_post_is_logged_and_the_next_one_creates(rec, caplog):
    r, api, clock = rec
    api.fail_next = 1
    await r.record(JOB, "Normal", "Stopped", "m")  # never raises
    assert not api.events and "could not post event Stopped" in caplog.text
    await r.record(JOB, "Normal", "Stopped", "m")
    assert [c[0] for c in api.calls] == ["create", "create"] and next(iter(api.events.values()))["count"] == 1


async def test_ten_similar_messages_in_the_window_are_combined_into_one_event(rec):
    r, api, clock = rec
    for i in range(9):
        clock.t += 1
        await r.record(JOB, "Warning", "ElasticsearchUnavailable", f"timeout after {i}s")
    assert len(api.events) == 9
    for i in range(9, 30):
        clock.t += 1
        await r.record(JOB, "Warning", "ElasticsearchUnavailable", f"timeout after {i}s")
    assert len(api.events) == 10
    combined = [e for e in api.events.values() if e["message"].startswith(COMBINED_PREFIX)]
    assert len(combined) == 1 and combined[0]["count"] == 21
    assert combined[0]["message"] == COMBINED_PREFIX + "timeout after 29s"


async def test_a_quiet_window_starts_the_similar_group_afresh(rec):
    r, api, clock = rec
    for i in range(9):
        await r.record(JOB, "Warning", "ElasticsearchUnavailable", f"m{i}")
    clock.t += 601  # more than the 600 s window since the last similar event
    await r.record(JOB, "Warning", "ElasticsearchUnavailable", "m9")
    assert not any(e["message"].startswith(COMBINED_PREFIX) for e in api.events.values())
    assert len(api.events) == 10


async def test_the_cache_is_bounded_and_forgets_the_least_recently_used(rec):
    _, api, clock = rec
    r = EventRecorder(api, component="c", instance="i", clock=clock, cache_size=2)
    await r.record(JOB, "Normal", "A", "m")
    await r.record(JOB, "Normal", "B", "m")
    await r.record(JOB, "Normal", "A", "m")  # A is now the most recent
    await r.record(JOB, "Normal", "C", "m")  # evicts B
    await r.record(JOB, "Normal", "B", "m")  # B again: forgotten, so a new Event
    assert [c[0] for c in api.calls] == ["create", "create", "patch", "create", "create"]


async def test_messages_are_truncated_to_1024_characters(rec):
    r, api, clock = rec
    await r.record(JOB, "Warning", "InvalidConfig", "x" * 5000)
    assert len(next(iter(api.events.values()))["message"]) == 1024
