"""The leader election algorithm (rollup_operator.ha.leader) against an in-memory Lease store.

The store behaves as the API server does for one Lease: resourceVersion bumps on every write,
409 on a stale update or a second create. Time is a fake monotonic clock where the algorithm is
about time; the loops run on real (short) timings.
"""

from __future__ import annotations

import asyncio
import time

import pytest

from rollup_operator import metrics
from rollup_operator.ha.leader import Elector, LeaseConflict, LeaseError, Timings, lead


class FakeStore:
    def __init__(self):
        self.spec: dict | None = None
        self.rv = 0
        self.calls: list[str] = []
        self.fail = False  # raise LeaseError (API server unreachable)
        self.hang = False  # never answer (a frozen connection)

    async def _enter(self, what):
        self.calls.append(what)
        if self.hang:
            await asyncio.Event().wait()
        if self.fail:
            raise LeaseError("connection refused")

    async def get(self):
        await self._enter("get")
        return None if self.spec is None else (dict(self.spec), str(self.rv))

    async def create(self, spec):
        await self._enter("create")
        if self.spec is not None:
            raise LeaseConflict("exists")
        self.spec, self.rv = dict(spec), self.rv + 1
        return str(self.rv)

    async def update(self, spec, rv):
        await self._enter("update")
        if self.spec is None:
            raise LeaseError("404: not found")
        if rv != str(self.rv):
            raise LeaseConflict("stale")
        self.spec, self.rv = dict(spec), self.rv + 1
        return str(self.rv)


class Clock:
    def __init__(self):
        self.t = 1000.0

    def __call__(self):
        return self.t


def wall_counter():
    n = iter(range(1, 10**6))
    return lambda: f"2026-12-01T10:00:{next(n) % 60:02d}.{next(n):06d}Z"


def elector(store, identity, clock=None, timings=Timings()):
    return Elector(store, identity, timings, clock=clock or Clock(), wallclock=wall_counter())


async def test_first_candidate_creates_the_lease():
    store = FakeStore()
    a = elector(store, "a")
    assert await a.try_acquire_or_renew()
    assert store.calls == ["get", "create"]
    assert store.spec["holderIdentity"] == "a"
    assert store.spec["leaseDurationSeconds"] == 15
    assert store.spec["leaseTransitions"] == 0
    assert store.spec["acquireTime"] == store.spec["renewTime"]
    assert a.is_leader()


async def test_renewal_is_one_optimistic_update_keeping_acquire_time():
    store, clock = FakeStore(), Clock()
    a = elector(store, "a", clock)
    await a.try_acquire_or_renew()
    first = dict(store.spec)
    store.calls.clear()
    clock.t += 2
    assert await a.try_acquire_or_renew()
    assert store.calls == ["update"]  # no read: the cached resourceVersion guards the write
    assert store.spec["acquireTime"] == first["acquireTime"]
    assert store.spec["renewTime"] != first["renewTime"]
    assert store.spec["leaseTransitions"] == 0


async def test_standby_waits_a_full_lease_duration_of_no_change_then_takes_over():
    store, ca, cb = FakeStore(), Clock(), Clock()
    a, b = elector(store, "a", ca), elector(store, "b", cb)
    await a.try_acquire_or_renew()
    assert not await b.try_acquire_or_renew()
    assert b.holder == "a" and not b.is_leader()
    cb.t += 14.9
    assert not await b.try_acquire_or_renew()  # unchanged for 14.9 s: still valid
    cb.t += 0.2
    assert await b.try_acquire_or_renew()  # unchanged for 15.1 s: expired, taken
    assert store.spec["holderIdentity"] == "b"
    assert store.spec["leaseTransitions"] == 1
    assert store.spec["acquireTime"] == store.spec["renewTime"]


async def test_every_renewal_restarts_the_standbys_count():
    store, ca, cb = FakeStore(), Clock(), Clock()
    a, b = elector(store, "a", ca), elector(store, "b", cb)
    await a.try_acquire_or_renew()
    for _ in range(20):  # 20 x 10 s = 200 s, far past the lease duration in total
        assert not await b.try_acquire_or_renew()
        cb.t += 10
        ca.t += 10
        assert await a.try_acquire_or_renew()
    assert store.spec["holderIdentity"] == "a"


async def test_clock_skew_does_not_matter_only_observed_change_does():
    """renewTime strings from a holder whose clock is years off: the standby never reads them
    as times; it only notices whether the record changed, by its own clock."""
    store, cb = FakeStore(), Clock()
    b = elector(store, "b", cb)
    store.spec, store.rv = {"holderIdentity": "skewed", "leaseDurationSeconds": 15, "acquireTime": "2001-01-01T00:00:00.000000Z",
                            "renewTime": "2001-01-01T00:00:00.000000Z", "leaseTransitions": 4}, 7
    assert not await b.try_acquire_or_renew()  # ancient renewTime, but just observed: valid
    cb.t += 5
    store.spec = {**store.spec, "renewTime": "2099-01-01T00:00:00.000000Z"}
    store.rv += 1
    assert not await b.try_acquire_or_renew()  # renewed (to a far-future time): counted anew
    cb.t += 14
    assert not await b.try_acquire_or_renew()
    cb.t += 2  # 16 s without change since the far-future renewal was seen
    assert await b.try_acquire_or_renew()
    assert store.spec["leaseTransitions"] == 5


async def test_the_records_own_lease_duration_is_used():
    store, cb = FakeStore(), Clock()
    b = elector(store, "b", cb)
    store.spec, store.rv = {"holderIdentity": "a", "leaseDurationSeconds": 60, "renewTime": "x", "acquireTime": "x"}, 1
    assert not await b.try_acquire_or_renew()
    cb.t += 30  # past our 15 s, within the holder's 60 s
    assert not await b.try_acquire_or_renew()
    cb.t += 31
    assert await b.try_acquire_or_renew()


async def test_conflict_only_one_of_two_candidates_wins():
    store, ca, cb = FakeStore(), Clock(), Clock()
    store.spec, store.rv = {"holderIdentity": "old", "leaseDurationSeconds": 15, "renewTime": "x", "acquireTime": "x"}, 3
    a, b = elector(store, "a", ca), elector(store, "b", cb)
    assert not await a.try_acquire_or_renew()
    assert not await b.try_acquire_or_renew()
    ca.t += 16
    cb.t += 16
    # both read the expired record, then both write with the same resourceVersion
    real_update = store.update
    seen = []

    async def slow_update(spec, rv):
        seen.append(rv)
        await asyncio.sleep(0.01)
        return await real_update(spec, rv)

    store.update = slow_update
    results = await asyncio.gather(a.try_acquire_or_renew(), b.try_acquire_or_renew())
    assert sorted(results) == [False, True]
    assert seen[0] == seen[1]
    assert store.spec["holderIdentity"] == ("a" if results[0] else "b")
    assert store.spec["leaseTransitions"] == 1


async def test_fast_path_conflict_falls_back_to_reading_and_sees_the_new_holder():
    store, ca = FakeStore(), Clock()
    a = elector(store, "a", ca)
    await a.try_acquire_or_renew()
    store.spec = {**store.spec, "holderIdentity": "intruder"}  # e.g. an admin edited the Lease
    store.rv += 1
    store.calls.clear()
    assert not await a.try_acquire_or_renew()
    assert store.calls == ["update", "get"]
    assert a.holder == "intruder"


async def test_a_create_race_is_lost_cleanly():
    store = FakeStore()
    a, b = elector(store, "a"), elector(store, "b")
    real_get = store.get

    async def get_then_other_creates():
        r = await real_get()
        if store.spec is None:
            await store.create({"holderIdentity": "b", "leaseDurationSeconds": 15, "acquireTime": "x", "renewTime": "x"})
        return r

    store.get = get_then_other_creates
    with pytest.raises(LeaseConflict):
        await a.try_acquire_or_renew()
    assert store.spec["holderIdentity"] == "b"
    assert not a.is_leader()
    del b


async def test_release_empties_the_holder_and_a_standby_takes_over_at_once():
    store, ca, cb = FakeStore(), Clock(), Clock()
    a, b = elector(store, "a", ca), elector(store, "b", cb)
    await a.try_acquire_or_renew()
    assert not await b.try_acquire_or_renew()
    assert await a.release()
    assert store.spec["holderIdentity"] == ""
    assert store.spec["leaseDurationSeconds"] == 1
    assert store.spec["leaseTransitions"] == 0
    assert await b.try_acquire_or_renew()  # no waiting: nobody holds it
    assert store.spec["leaseTransitions"] == 1
    assert not await a.release()  # not the holder any more: nothing written
    assert store.spec["holderIdentity"] == "b"


async def test_release_by_a_non_leader_writes_nothing():
    store = FakeStore()
    a, b = elector(store, "a"), elector(store, "b")
    await a.try_acquire_or_renew()
    await b.try_acquire_or_renew()
    store.calls.clear()
    assert not await b.release()
    assert store.calls == []


def test_timings_are_checked():
    Timings(15, 10, 2)
    with pytest.raises(ValueError, match="greater than the renew deadline"):
        Timings(10, 10, 2)
    with pytest.raises(ValueError, match="retry period"):
        Timings(15, 2, 2)
    with pytest.raises(ValueError):
        Timings(15, 10, 0)


# --- the loops, on real short timings -----------------------------------------------------

FAST = Timings(lease_duration=1.0, renew_deadline=0.5, retry_period=0.1)


def real(store, identity):
    return Elector(store, identity, FAST)


async def test_hold_keeps_renewing_at_the_retry_period():
    store = FakeStore()
    a = real(store, "a")
    await a.acquire()
    store.calls.clear()
    with pytest.raises(TimeoutError):
        await asyncio.wait_for(a.hold(), 1.0)
    assert 6 <= store.calls.count("update") <= 11
    assert "get" not in store.calls


@pytest.mark.parametrize("fault", ["fail", "hang"])
async def test_hold_gives_up_at_the_renew_deadline(fault):
    store = FakeStore()
    a = real(store, "a")
    await a.acquire()
    await asyncio.sleep(0)
    setattr(store, fault, True)
    t0 = time.monotonic()
    why = await asyncio.wait_for(a.hold(), 3)
    took = time.monotonic() - t0
    # the deadline counts from the start of the last successful renewal (the acquisition here)
    assert took <= FAST.renew_deadline + 0.15, took
    assert "could not renew" in why
    assert ("no answer" in why) if fault == "hang" else ("connection refused" in why)
    assert metrics.LEADER._value.get() == 0


async def test_hold_ends_at_once_when_another_holder_appears():
    store = FakeStore()
    a = real(store, "a")
    await a.acquire()
    store.spec = {**store.spec, "holderIdentity": "b", "renewTime": "later"}
    store.rv += 1
    t0 = time.monotonic()
    why = await a.hold()
    assert time.monotonic() - t0 < FAST.retry_period + 0.1
    assert "held by 'b'" in why


async def test_acquire_retries_until_the_holder_expires():
    store = FakeStore()
    store.spec, store.rv = {"holderIdentity": "gone", "leaseDurationSeconds": 1, "renewTime": "x", "acquireTime": "x"}, 1
    before = metrics.LEADER_TRANSITIONS._value.get()
    t0 = time.monotonic()
    await asyncio.wait_for(real(store, "b").acquire(), 3)
    took = time.monotonic() - t0
    assert 1.0 <= took <= 1.0 + FAST.retry_period * 1.1 + 0.1, took
    assert metrics.LEADER_TRANSITIONS._value.get() == before + 1
    assert metrics.LEADER._value.get() == 1


async def test_lead_cancels_the_operator_on_loss_and_reports_it():
    store = FakeStore()
    events, state = [], {}

    async def operator():
        state["started"] = time.monotonic()
        try:
            await asyncio.sleep(3600)
        except asyncio.CancelledError:
            state["cancelled"] = time.monotonic()
            raise

    async def post(*ev):
        events.append(ev)

    async def cut_off():
        await asyncio.sleep(0.3)
        store.hang = True

    asyncio.ensure_future(cut_off())
    code = await asyncio.wait_for(lead(real(store, "a"), operator, asyncio.Event(), event=post,
                                       on_lost=lambda: state.setdefault("on_lost", time.monotonic())), 5)
    assert code == 1
    assert "cancelled" in state and "on_lost" in state
    # cut off at +0.3 s after the start; the last renewal started at most one retry period before
    assert state["cancelled"] - state["started"] <= 0.3 + FAST.renew_deadline + 0.2
    assert [e[1] for e in events] == ["LeaderElection", "LeaderElectionLost"]
    assert events[1][0] == "Warning" and "could not renew" in events[1][2]
    assert store.spec["holderIdentity"] == "a"  # not released: the store was unreachable


async def test_lead_stop_while_standby_returns_without_writing():
    store = FakeStore()
    store.spec, store.rv = {"holderIdentity": "x", "leaseDurationSeconds": 60, "renewTime": "x", "acquireTime": "x"}, 1
    stop = asyncio.Event()
    ran = []

    async def operator():
        ran.append(1)

    asyncio.get_running_loop().call_later(0.3, stop.set)
    assert await asyncio.wait_for(lead(real(store, "b"), operator, stop), 3) == 0
    assert not ran
    assert set(store.calls) == {"get"}


async def test_lead_releases_when_the_operator_stops():
    store = FakeStore()
    stop = asyncio.Event()

    async def operator():  # as kopf does on SIGTERM: returns when told to stop
        await stop.wait()

    asyncio.get_running_loop().call_later(0.3, stop.set)
    assert await asyncio.wait_for(lead(real(store, "a"), operator, stop), 3) == 0
    assert store.spec["holderIdentity"] == ""


async def test_lead_releases_and_fails_when_the_operator_crashes():
    store = FakeStore()

    async def operator():
        await asyncio.sleep(0.2)
        raise RuntimeError("boom")

    assert await asyncio.wait_for(lead(real(store, "a"), operator, asyncio.Event()), 3) == 1
    assert store.spec["holderIdentity"] == ""


def test_identity_and_namespace_defaults(monkeypatch, tmp_path):
    from rollup_operator.ha import lease_store

    monkeypatch.setenv("POD_NAME", "rollup-operator-abc")
    assert lease_store.default_identity() == "rollup-operator-abc"
    monkeypatch.delenv("POD_NAME")
    one, two = lease_store.default_identity(), lease_store.default_identity()
    assert one != two and one.split("_")[0] == two.split("_")[0] and len(one.rsplit("_", 1)[1]) == 12
    monkeypatch.setenv("POD_NAMESPACE", "ops")
    assert lease_store.default_namespace() == "ops"
    monkeypatch.delenv("POD_NAMESPACE")
    sa = tmp_path / "namespace"
    monkeypatch.setattr(lease_store, "SA_NAMESPACE_FILE", sa)
    assert lease_store.default_namespace() == "rollup-operator-system"
    sa.write_text("from-sa\n")
    assert lease_store.default_namespace() == "from-sa"


def test_cli_refuses_inconsistent_timings(capsys):
    from rollup_operator.cli.main import main

    assert main(["run", "--leader-elect", "--leader-election-lease-duration", "5",
                 "--leader-election-renew-deadline", "6"]) == 2
    assert "greater than the renew deadline" in capsys.readouterr().err


async def test_a_lease_deleted_under_the_leader_is_created_again():
    store, clock = FakeStore(), Clock()
    a = elector(store, "a", clock)
    await a.try_acquire_or_renew()
    store.spec = None  # kubectl delete lease
    store.calls.clear()
    clock.t += 2
    assert await a.try_acquire_or_renew()
    assert store.calls == ["update", "get", "create"]
    assert store.spec["holderIdentity"] == "a"


async def test_lead_steps_down_if_the_renewal_loop_itself_fails():
    store = FakeStore()
    events = []
    el = real(store, "a")

    async def broken_hold():
        raise KeyError("bug")

    el.hold = broken_hold

    async def post(*ev):
        events.append(ev)

    assert await asyncio.wait_for(lead(el, lambda: asyncio.sleep(3600), asyncio.Event(), event=post), 3) == 1
    assert events[-1][1] == "LeaderElectionLost" and "KeyError" in events[-1][2]
