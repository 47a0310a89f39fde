"""The operator's cache of both kinds: what the watch delivered, in resourceVersion order.

One :class:`JobEntry` per RollupJob and one :class:`ConnectionEntry` per ElasticsearchConnection,
an index of jobs by the connection they name, the claims (ownership.py: which RollupJobs name which
job id on which cluster, by job id and cluster identity), and the rules for taking in a watch event (an older
copy than the one known is ignored; a new generation starts a new :class:`Progress`, carried on
from the stored status after a restart). No I/O, no tasks: the controller turns what
``put_job`` / ``put_connection`` report into work-queue keys.
"""

from __future__ import annotations

import datetime as dt
import logging
from dataclasses import dataclass, field, replace
from typing import Any, ClassVar, Mapping

from rollup_operator.engine.connection import Connection
from rollup_operator.job.decide import Progress
from rollup_operator.job.spec import Key, key_of, read_job, resource_version, CONNECTION_KIND, JOB_KIND, JobSpec
from rollup_operator.job.observations import Observation
from rollup_operator.job.ownership import Claim, Ownership, ownership

log = logging.getLogger("rollup_operator")


def parse_time(value: Any) -> float | None:
    """An RFC 3339 time from a status (``...Z``) as epoch seconds, or None."""
    if not isinstance(value, str) or not value:
        return None
    try:
        return dt.datetime.fromisoformat(value.replace("Z", "+00:00")).timestamp()
    except ValueError:
        return None


def resume(generation: int, status: Mapping[str, Any], created: bool = False) -> Progress:
    """The progress a generation starts with.

    A job this process has not worked on (e.g. after a restart) whose stored status describes this
    very generation carries on its stop count instead of restarting it from zero: the stops already
    sent count, and their timeouts, if any, were already announced; a Ready status is where the
    drift check starts from.
    """
    if status.get("observedGeneration") != generation:
        return Progress(generation=generation, created=created)
    attempts = int(status.get("stopAttempts") or 0)
    return Progress(generation=generation, created=created, stop_attempts=attempts, stop_timeouts=attempts,
                    last_stop_at=parse_time(status.get("lastStopAttemptTime")), converged=_converged(status))


def _converged(status: Mapping[str, Any]) -> str | None:
    """The server state a stored status saw the job converged in (Ready=True), for the drift check."""
    ready = next((c for c in status.get("conditions") or () if isinstance(c, dict) and c.get("type") == "Ready"), {})
    state = status.get("jobState")
    return state if ready.get("status") == "True" and isinstance(state, str) and state not in ("absent", "unknown") else None


@dataclass(eq=False)
class JobEntry:
    """One RollupJob: identity, the cached object, what is known of its server job, and progress."""

    namespace: str
    name: str
    uid: str = ""
    # the cached object (from the watch)
    rv: int = 0
    generation: int = 0
    spec: JobSpec | None = None
    invalid: str | None = None  # why the spec cannot be acted on
    finalizers: tuple[str, ...] = ()
    #: The stored status as the operator knows it: the last one it wrote (or queued), else the
    #: watch's. Status writes are whole (server-side apply), so this is what the server holds.
    status: dict[str, Any] = field(default_factory=dict)
    #: The status writer has writes of this job queued or in flight (status_writer.py sets and clears it).
    writes_pending: bool = False
    # what is known of the server job
    obs: Observation | None = None
    obs_time: float = -1.0  # monotonic time the read behind ``obs`` was sent
    need_fresh_after: float = 0.0  # a convergence claim needs a read sent after this (monotonic)
    look_again_at: float | None = None  # a timed requeue: from then on, the cached observation is stale
    # the reconciler's memory for this generation
    progress: Progress = field(default_factory=Progress)
    stop_started: float | None = None  # monotonic time of the first stop (for the stop duration metric)
    trigger: tuple[Any, ...] | None = None  # (generation, invalid, spec): what needs a new pass when it changes
    created: float = 0.0  # metadata.creationTimestamp (epoch seconds): the older claim owns the job
    #: The ownership the last pass acted on (None: no pass yet); a claim change that alters it wakes the job.
    ownership: Ownership | None = None

    kind: ClassVar[str] = JOB_KIND
    #: (namespace, name), set once: a plain attribute, read on every step of a pass.
    key: Key = field(init=False)

    #: The job's logger (job, namespace and connection in every record); renewed with the spec.
    log: logging.LoggerAdapter[logging.Logger] = field(init=False)

    def __post_init__(self) -> None:
        self.key = (self.namespace, self.name)
        self.set_spec(self.spec, self.invalid)

    def set_spec(self, spec: JobSpec | None, invalid: str | None) -> None:
        self.spec, self.invalid = spec, invalid
        conn = spec.connection if spec else None
        self.log = logging.LoggerAdapter(log, {"job": self.name, "namespace": self.namespace, "connection": conn})

    @property
    def ref(self) -> dict[str, str]:
        return {"kind": JOB_KIND, "namespace": self.namespace, "name": self.name, "uid": self.uid}

    def forget_observation(self, now: float) -> None:
        """The next pass must look at the server again, with a read sent after ``now``."""
        self.obs = None
        self.need_fresh_after = now


@dataclass(eq=False)
class ConnectionEntry:
    namespace: str
    name: str
    rv: int = 0
    generation: int | None = None
    status: dict[str, Any] = field(default_factory=dict)
    writes_pending: bool = False  # as JobEntry's
    conn: Connection | None = None
    uid: str | None = None
    #: The cluster's identities (Connection.clusters): empty while unknown, None while unusable.
    clusters: frozenset[str] | None = None

    kind: ClassVar[str] = CONNECTION_KIND
    key: Key = field(init=False)

    def __post_init__(self) -> None:
        self.key = (self.namespace, self.name)

    @property
    def ref(self) -> dict[str, str]:
        return {"kind": CONNECTION_KIND, "namespace": self.namespace, "name": self.name}


class Store:
    def __init__(self) -> None:
        self.jobs: dict[Key, JobEntry] = {}
        self.connections: dict[Key, ConnectionEntry] = {}
        self._by_connection: dict[Key, set[Key]] = {}
        #: Claims by job id: RollupJob key -> the identities of the cluster it names the job on.
        self._claims: dict[str, dict[Key, frozenset[str]]] = {}
        self._claimed: dict[Key, str] = {}  # RollupJob key -> the job id it claims
        #: Job ids whose claims changed since ``claims_changed`` was last called.
        self._changed_ids: set[str] = set()

    # --- RollupJobs ----------------------------------------------------------------------------

    def put_job(self, body: Mapping[str, Any], now: float) -> JobEntry | None:
        """Take in a job's object. Returns its entry if it needs a pass, else None.

        While the operator's own status writes for the job are queued or in flight
        (``entry.writes_pending``, kept by the status writer), the entry's status already is what the
        stored status becomes once they land: the object's status predates them and is not taken.
        """
        key, rv, spec, invalid = read_job(body)
        meta = body.get("metadata") or {}
        entry = self.jobs.get(key)
        if entry is None:
            entry = self.jobs[key] = JobEntry(*key)
        if rv and rv < entry.rv:
            return None  # older than what is known (e.g. our own write's answer came first)
        entry.rv = rv or entry.rv
        entry.uid = str(meta.get("uid", entry.uid))
        entry.created = parse_time(meta.get("creationTimestamp")) or entry.created
        if not entry.writes_pending:
            entry.status = dict(body.get("status") or {})
        if entry.status.get("managed") is True and not entry.progress.created:
            # The operator created the job (only it writes status: users have no access to the status
            # subresource). Known after a restart or a failover too, so a managed job's config is
            # still updated in place (OpenSearch) after one.
            entry.progress = replace(entry.progress, created=True)
        entry.finalizers = tuple(meta.get("finalizers") or ())
        generation = int(meta.get("generation") or 0)
        trigger = (generation, invalid, spec)
        if trigger == entry.trigger:
            return None
        if generation != entry.generation:
            first_sight = entry.generation == 0
            entry.progress = resume(generation, entry.status if first_sight else {}, entry.progress.created)
            entry.need_fresh_after = now
            entry.generation = generation
        self._unindex(entry)
        entry.trigger = trigger
        entry.set_spec(spec, invalid)
        if spec is not None:
            self._by_connection.setdefault((spec.namespace, spec.connection), set()).add(key)
        self._claim(entry)
        return entry

    def delete_job(self, key: Key) -> JobEntry | None:
        entry = self.jobs.pop(key, None)
        if entry is not None:
            self._unindex(entry)
            self._unclaim(entry)
        return entry

    def jobs_on(self, connection: Key) -> list[JobEntry]:
        return [self.jobs[k] for k in list(self._by_connection.get(connection, ())) if k in self.jobs]

    def _unindex(self, entry: JobEntry) -> None:
        if entry.spec is not None:
            self._by_connection.get((entry.spec.namespace, entry.spec.connection), set()).discard(entry.key)

    # --- claims: which RollupJobs name which job on which cluster (ownership.py) ----------------

    def _claim(self, entry: JobEntry) -> None:
        """(Re-)index the entry's claim: its job id on its connection's cluster, if it can act at all."""
        spec = entry.spec
        conn = self.connections.get((spec.namespace, spec.connection)) if spec is not None else None
        if spec is None or conn is None or conn.clusters is None:
            self._unclaim(entry)
            return
        if self._claimed.get(entry.key) != spec.job_id:
            self._unclaim(entry)
        claims = self._claims.setdefault(spec.job_id, {})
        if claims.get(entry.key) != conn.clusters:
            claims[entry.key] = conn.clusters
            self._claimed[entry.key] = spec.job_id
            self._changed_ids.add(spec.job_id)

    def _unclaim(self, entry: JobEntry) -> None:
        job_id = self._claimed.pop(entry.key, None)
        if job_id is None:
            return
        claims = self._claims.get(job_id, {})
        claims.pop(entry.key, None)
        self._changed_ids.add(job_id)
        if not claims:
            self._claims.pop(job_id, None)

    def ownership(self, entry: JobEntry) -> Ownership:
        """Who owns the job ``entry`` names (an entry that claims nothing acts as its own owner)."""
        spec = entry.spec
        claims = self._claims.get(spec.job_id, {}) if spec is not None else {}
        if entry.key not in claims:
            return Ownership()
        assert spec is not None
        return ownership(self._claim_of(entry.key, claims[entry.key]), [self._claim_of(k, c) for k, c in claims.items()])

    def owner_of(self, job_id: str, clusters: frozenset[str]) -> Ownership:
        """Which RollupJob owns ``job_id`` on the cluster of identities ``clusters``, for an actor that is
        not a RollupJob (a RollupMigration that stops or deletes the job itself): every claim is older
        than it, so the owner is the oldest RollupJob naming the job on that cluster, None if there is none;
        not certain while a claim's cluster, or this one (``clusters`` empty), is not known yet."""
        claims = self._claims.get(job_id, {})
        me = Claim(("", ""), float("inf"), clusters)
        return ownership(me, [self._claim_of(k, c) for k, c in claims.items()])

    def _claim_of(self, key: Key, clusters: frozenset[str]) -> Claim:
        job = self.jobs.get(key)
        return Claim(key, job.created if job is not None else 0.0, clusters)

    def claimants(self, job_id: str) -> list[JobEntry]:
        """Every entry that claims ``job_id``, on any cluster."""
        return [self.jobs[k] for k in self._claims.get(job_id, {}) if k in self.jobs]

    def claims_changed(self) -> list[JobEntry]:
        """The claimants of every job id whose claims changed since the last call (their owner may have changed)."""
        ids, self._changed_ids = self._changed_ids, set()
        return [e for job_id in sorted(ids) for e in self.claimants(job_id)]

    def owners_changed(self) -> list[Key]:
        """Of those claimants, the ones a pass has acted for whose ownership is no longer the one it
        acted on: each needs a pass (the controller enqueues them)."""
        return [e.key for e in self.claims_changed() if e.ownership is not None and self.ownership(e) != e.ownership]

    def set_clusters(self, connection: Key, clusters: frozenset[str] | None) -> None:
        """The connection's cluster identities changed (built, asked the server, rebuilt, deleted)."""
        entry = self.connections.get(connection)
        if entry is not None:
            entry.clusters = clusters
        for job in self.jobs_on(connection):
            self._claim(job)

    # --- ElasticsearchConnections --------------------------------------------------------------

    def put_connection(self, body: Mapping[str, Any], deleted: bool = False) -> tuple[ConnectionEntry | None, bool]:
        """Take in a connection's object. Returns (entry, whether its client must be rebuilt);
        the entry is None when the connection was deleted or the copy is older than the one known."""
        meta = body.get("metadata") or {}
        key = key_of(body)
        if deleted:
            self.connections.pop(key, None)
            return None, True
        entry = self.connections.get(key)
        if entry is None:
            entry = self.connections[key] = ConnectionEntry(*key)
        rv = resource_version(meta)
        if rv and rv < entry.rv:
            return None, False
        entry.rv = rv
        entry.uid = meta.get("uid")
        entry.status = dict(body.get("status") or {})
        generation = meta.get("generation")
        rebuild = generation != entry.generation or entry.conn is None
        entry.generation = generation
        return entry, rebuild
