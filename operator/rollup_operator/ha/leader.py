"""Leader election on a coordination.k8s.io/v1 Lease, for an asyncio process.

The algorithm is client-go's (tools/leaderelection), written anew for asyncio:

* A candidate reads the Lease. It may take it when nobody holds it (empty ``holderIdentity``)
  or when the record it sees has not changed for ``leaseDurationSeconds`` *by its own
  monotonic clock* since it first saw that record ("observed time"): the holder's
  ``renewTime`` is never compared with the local wall clock, so clock skew between machines
  does not matter.
* Every write is an optimistic update guarded by the ``resourceVersion`` last read (a 409
  means someone else wrote first); taking the Lease from another holder adds one to
  ``leaseTransitions``.
* The leader renews every ``retry_period``. Stricter than client-go, the renew deadline counts
  from the start of the last *successful* renewal and a call in flight at the deadline is
  abandoned, so a leader that cannot renew stops acting at most ``renew_deadline`` after the
  instant others can start counting its lease down (``lease_duration`` later): the gap is
  the margin for stopping. Seeing another holder ends leadership at once.
* ``release()`` (client-go's ReleaseOnCancel) writes an empty holder with a one-second lease,
  so a standby takes over on its next attempt.

:class:`Elector` knows only a :class:`LeaseStore`; :mod:`.lease_store` is the Kubernetes one.
Why not a library: see docs/high-availability.md.
"""

from __future__ import annotations

import asyncio
import dataclasses
import datetime as dt
import logging
import math
import random
import time
from typing import Any, Awaitable, Callable, Protocol

from rollup_operator import metrics

log = logging.getLogger("rollup_operator.ha.leader")

JITTER = 0.1  # a standby waits retry_period * (1 + up to 10%) between attempts


class LeaseError(Exception):
    """The Lease could not be read or written (network, API server, RBAC)."""


class LeaseConflict(LeaseError):
    """409: the Lease changed since it was read, or was created by someone else first."""


class LeaseStore(Protocol):
    async def get(self) -> tuple[dict[str, Any], str] | None:
        """(spec, resourceVersion) of the Lease, or None if it does not exist."""

    async def create(self, spec: dict[str, Any]) -> str:
        """Create the Lease with this spec; returns its resourceVersion. LeaseConflict if it exists."""

    async def update(self, spec: dict[str, Any], resource_version: str) -> str:
        """Replace the spec if the Lease is still at resource_version; LeaseConflict if not."""


def now_micro(now: dt.datetime | None = None) -> str:
    """A Kubernetes MicroTime (RFC 3339, microseconds, UTC)."""
    return (now or dt.datetime.now(dt.timezone.utc)).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


@dataclasses.dataclass(frozen=True)
class Timings:
    lease_duration: float = 15.0
    renew_deadline: float = 10.0
    retry_period: float = 2.0

    def __post_init__(self) -> None:
        if not self.lease_duration > self.renew_deadline:
            raise ValueError("the lease duration must be greater than the renew deadline")
        if not self.renew_deadline > self.retry_period * (1 + JITTER):
            raise ValueError(f"the renew deadline must be greater than the retry period x {1 + JITTER}")
        if self.retry_period <= 0 or self.lease_duration < 1:
            raise ValueError("the retry period must be positive and the lease duration at least 1s")


class Elector:
    """One candidate for one Lease. ``clock``: monotonic seconds; ``wallclock``: the times written."""

    def __init__(self, store: LeaseStore, identity: str, timings: Timings = Timings(), *,
                 clock: Callable[[], float] = time.monotonic,
                 wallclock: Callable[[], str] = now_micro,
                 sleep: Callable[[float], Awaitable[Any]] = asyncio.sleep):
        if not identity:
            raise ValueError("the holder identity must not be empty")
        self.store = store
        self.identity = identity
        self.timings = timings
        self.clock, self.wallclock, self.sleep = clock, wallclock, sleep
        self.observed: dict[str, Any] | None = None  # the last Lease spec seen or written
        self.observed_at = 0.0  # clock() when it was first seen
        self.resource_version: str | None = None
        self.last_error: str | None = None

    # --- state ----------------------------------------------------------------------------
    @property
    def holder(self) -> str:
        return (self.observed or {}).get("holderIdentity") or ""

    def is_leader(self) -> bool:
        return self.holder == self.identity

    def _valid(self, now: float) -> bool:
        duration = (self.observed or {}).get("leaseDurationSeconds") or 0
        return self.observed_at + duration > now

    def _observe(self, spec: dict[str, Any], rv: str, now: float, *, changed: bool = True) -> None:
        if spec != self.observed:
            if self.observed is not None and spec.get("holderIdentity") != self.holder:
                log.info("leader election: the Lease is now held by %r", spec.get("holderIdentity") or "(nobody)")
            self.observed, self.observed_at = spec, now
        elif changed:
            self.observed_at = now
        self.resource_version = rv

    def _spec(self, now_wall: str, acquire_time: str, transitions: int) -> dict[str, Any]:
        return {"holderIdentity": self.identity, "leaseDurationSeconds": math.ceil(self.timings.lease_duration),
                "acquireTime": acquire_time, "renewTime": now_wall, "leaseTransitions": transitions}

    # --- one attempt ----------------------------------------------------------------------
    async def try_acquire_or_renew(self) -> bool:
        """One attempt to take or keep the Lease. True if this candidate holds it afterwards."""
        now, wall = self.clock(), self.wallclock()
        if self.is_leader() and self._valid(now) and self.resource_version:
            # Fast path: renew the record we wrote last, without reading it first.
            assert self.observed is not None  # is_leader(): its holder (a non-empty identity) is in it
            spec = self._spec(wall, self.observed.get("acquireTime") or wall, self.observed.get("leaseTransitions") or 0)
            try:
                self._observe(spec, await self.store.update(spec, self.resource_version), now)
                return True
            except LeaseError as e:  # changed under us (409), deleted, or a passing error: read it
                log.debug("leader election: optimistic renewal failed (%s); reading the Lease", e)
        current = await self.store.get()
        if current is None:
            spec = self._spec(wall, wall, 0)
            self._observe(spec, await self.store.create(spec), now)
            return True
        old, rv = current
        old = dict(old)
        self._observe(old, rv, now, changed=False)
        if self.holder and not self.is_leader() and self._valid(now):
            return False  # held by another, not expired by our clock
        if self.is_leader():
            spec = self._spec(wall, old.get("acquireTime") or wall, old.get("leaseTransitions") or 0)
        else:
            spec = self._spec(wall, wall, (old.get("leaseTransitions") or 0) + 1)
        try:
            self._observe(spec, await self.store.update(spec, rv), now)
        except LeaseConflict:
            return False
        return True

    async def _attempt(self, timeout: float) -> bool:
        try:  # asyncio.timeout, not wait_for: wait_for may swallow a cancellation (bpo-42130)
            async with asyncio.timeout(max(timeout, 0.001)):
                ok = await self.try_acquire_or_renew()
        except TimeoutError:
            self.last_error = f"no answer from the API server within {timeout:.1f}s"
            return False
        except LeaseError as e:
            self.last_error = str(e)
            return False
        self.last_error = None  # the API server answered (held by another, or a lost race: no error)
        return ok

    # --- loops ----------------------------------------------------------------------------
    async def acquire(self) -> None:
        """Return once this candidate holds the Lease (cancel to give up)."""
        t = self.timings
        log.info("leader election: %s waiting to acquire the Lease", self.identity)
        while True:
            if await self._attempt(t.renew_deadline):
                assert self.observed is not None  # a successful attempt observed the spec it wrote
                metrics.LEADER.set(1)
                metrics.LEADER_TRANSITIONS.inc()
                log.info("leader election: %s acquired the Lease (transitions %s)",
                         self.identity, self.observed.get("leaseTransitions"))
                return
            if self.last_error:
                log.warning("leader election: cannot acquire the Lease: %s", self.last_error)
            await self.sleep(t.retry_period * (1 + random.random() * JITTER))

    async def hold(self) -> str:
        """Renew until leadership is lost; returns why (never returns while renewals succeed)."""
        t = self.timings
        last_ok = self.observed_at
        while True:
            await self.sleep(t.retry_period)
            while True:
                start = self.clock()
                remaining = last_ok + t.renew_deadline - start
                if remaining <= 0:
                    why = self.last_error or "no renewal succeeded in time"
                    return self._lost(f"could not renew the Lease for {t.renew_deadline:g}s: {why}")
                if await self._attempt(remaining):
                    last_ok = start
                    break
                if self.holder and not self.is_leader():
                    return self._lost(f"the Lease is now held by {self.holder!r}")
                log.warning("leader election: renewal failed (%s); retrying", self.last_error)
                await self.sleep(max(0.0, min(t.retry_period, last_ok + t.renew_deadline - self.clock())))

    def _lost(self, why: str) -> str:
        metrics.LEADER.set(0)
        return why

    async def release(self, timeout: float | None = None) -> bool:
        """Give the Lease up (empty holder) if this candidate holds it. True if released."""
        metrics.LEADER.set(0)
        if not self.is_leader():
            return False
        assert self.observed is not None  # is_leader(): its holder (a non-empty identity) is in it
        spec = {**self.observed, "holderIdentity": "", "leaseDurationSeconds": 1,
                "acquireTime": self.wallclock(), "renewTime": self.wallclock()}

        async def once() -> bool:
            for _ in range(3):
                try:
                    self._observe(spec, await self.store.update(spec, self.resource_version or ""), self.clock())
                    return True
                except LeaseConflict:
                    current = await self.store.get()
                    if current is None:
                        return False
                    self._observe(dict(current[0]), current[1], self.clock(), changed=False)
                    if not self.is_leader():
                        return False
            return False

        try:
            async with asyncio.timeout(timeout or self.timings.renew_deadline):
                ok = await once()
        except (TimeoutError, LeaseError) as e:
            log.warning("leader election: could not release the Lease: %s", e or "timed out")
            return False
        if ok:
            log.info("leader election: %s released the Lease", self.identity)
        return ok


async def lead(elector: Elector, run_operator: Callable[[], Awaitable[None]], stop: asyncio.Event, *,
               event: Callable[[str, str, str], Awaitable[None]] | None = None, grace: float = 5.0,
               on_lost: Callable[[], None] | None = None) -> int:
    """Wait for the Lease, run the operator while holding it, then give it up. Returns the exit code.

    * ``stop`` set while a standby: return 0 at once (nothing to release).
    * The operator returns (it was told to stop, e.g. SIGTERM): release the Lease, return 0;
      it raises: release, return 1.
    * ``stop`` set while leading: the operator is cancelled and has ``grace`` seconds to finish.
    * Leadership lost: the operator task is cancelled and ``on_lost()`` called at once (the CLI
      cancels every other task and drops queued Kubernetes writes there), a Warning Event is
      posted, and 1 is returned: the caller exits without any further write.
    """
    post = event or (lambda *_a: asyncio.sleep(0))
    settle = grace
    stopping = asyncio.ensure_future(stop.wait())
    acquiring = asyncio.ensure_future(elector.acquire())
    await asyncio.wait({stopping, acquiring}, return_when=asyncio.FIRST_COMPLETED)
    if not acquiring.done():
        acquiring.cancel()
        await asyncio.gather(acquiring, return_exceptions=True)
        log.info("leader election: stopped while a standby")
        return 0
    await post("Normal", "LeaderElection", f"{elector.identity} became leader")
    operating = asyncio.ensure_future(run_operator())
    holding = asyncio.ensure_future(elector.hold())
    try:
        done, _ = await asyncio.wait({operating, holding, stopping}, return_when=asyncio.FIRST_COMPLETED)
        if stopping in done and not operating.done():
            operating.cancel()  # runtime.run_operator: calls in flight cancelled, nothing more sent
            done, _ = await asyncio.wait({operating, holding}, timeout=grace, return_when=asyncio.FIRST_COMPLETED)
            if not done:
                log.warning("leader election: the operator did not stop within %gs", grace)
        if holding.done():
            settle = 0.5
            operating.cancel()
            if on_lost is not None:
                on_lost()
            if holding.cancelled() or holding.exception() is not None:  # a bug in the loop: step down too
                why = f"the renewal loop failed: {'cancelled' if holding.cancelled() else repr(holding.exception())}"
            else:
                why = holding.result()
            log.error("leader election: LOST LEADERSHIP of %s: %s; every call in flight is cancelled and the "
                      "process exits so that it restarts as a standby", elector.identity, why)
            await asyncio.wait({operating}, timeout=0.5)
            await post("Warning", "LeaderElectionLost", f"{elector.identity} stopped leading: {why}")
            return 1
        code = 0
        if operating.done() and not operating.cancelled() and operating.exception() is not None:
            log.error("the operator failed: %r; giving the Lease up", operating.exception())
            code = 1
    finally:
        for task in (holding, operating, stopping):
            task.cancel()
        await asyncio.wait({holding, operating}, timeout=settle)
    await post("Normal", "LeaderElection", f"{elector.identity} stopped leading (shutting down)")
    await elector.release()
    return code
