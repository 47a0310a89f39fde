"""One owner per server job: which of the RollupJobs that name one job on one cluster may act (pure).

Two RollupJobs naming the same ``jobId`` on the same Elasticsearch cluster would fight over it
(one stops what the other starts, forever). A *claim* is a RollupJob with a usable spec whose
connection exists; it names a job id on a cluster. The cluster is known by its identities: the
normalised set of the connection's URLs (scheme and host lower-cased, default port explicit,
trailing slash removed, sorted) and, once ``GET /`` has answered, its ``cluster_uuid``. Two claims
are on the same cluster when they share an identity, so two connections to the same URL collide
before either has asked the server, and two connections through different nodes collide once both
know the UUID.

The oldest claim (``metadata.creationTimestamp``, then namespace/name) owns the job. Every other
claim is a duplicate: Stalled with reason ``DuplicateJob`` naming the owner (or with the reason its
own connection cannot be used, such as ``Unauthorized``, which the user has to fix first; the
owner is named in the message), it sends nothing to Elasticsearch (a deleted duplicate releases
its finalizer without a call), and it becomes the owner by itself once the owner goes away. A claim whose connection has not asked the server yet might be
on any cluster: if it is older, the younger claim waits (``certain=False``) instead of acting.

No I/O: the store (store.py) keeps the claims; the reconciler asks before every decision.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Iterable
from urllib.parse import urlsplit

from rollup_operator.job.decide import ADD_FINALIZER, PROGRESSING, REMOVE_FINALIZER, STALLED, Decision, Verdict
from rollup_operator.job.spec import JobSpec, Key
from rollup_operator.job.observations import ABSENT, UNKNOWN, Failure, JobAbsent, JobObserved, Observation


DUPLICATE = "DuplicateJob"
RESOLVED = "DuplicateResolved"  # the event when a duplicate becomes the owner
_DEFAULT_PORTS = {"http": 80, "https": 443}


def normalise_url(url: str) -> str:
    """``HTTPS://ES.example:443/`` -> ``https://es.example:443``; the path stays (minus a trailing slash)."""
    u = urlsplit(url.strip())
    scheme = u.scheme.lower()
    host = (u.hostname or "").lower()
    try:
        port = u.port or _DEFAULT_PORTS.get(scheme, 0)
    except ValueError:  # a port that is not a number: keep the text, it still identifies the URL
        return url.strip().rstrip("/").lower()
    if ":" in host:
        host = f"[{host}]"
    return f"{scheme}://{host}:{port}{u.path.rstrip('/')}"


def cluster_identities(urls: Iterable[str], cluster_uuid: str | None) -> frozenset[str]:
    """The identities of a connection's cluster: its normalised URL set, and its UUID when known."""
    ids = {"urls:" + ",".join(sorted({normalise_url(u) for u in urls}))}
    if cluster_uuid and cluster_uuid != "_na_":  # "_na_": the cluster has not formed yet
        ids.add("uuid:" + cluster_uuid)
    return frozenset(ids)


@dataclass(frozen=True)
class Claim:
    key: Key  # (namespace, name) of the RollupJob
    created: float  # metadata.creationTimestamp, epoch seconds
    clusters: frozenset[str]  # identities of its connection's cluster; empty: not known yet

    @property
    def order(self) -> tuple[float, str, str]:
        return (self.created, self.key[0], self.key[1])


@dataclass(frozen=True)
class Ownership:
    owner: Key | None = None  # None: this claim owns the job; else the owner's (namespace, name)
    certain: bool = True  # False: an older claim's cluster is not known yet, so do not act


OWNS = Ownership()


def ownership(me: Claim, claims: Iterable[Claim]) -> Ownership:
    """Who owns the job ``me`` names, among the claims that name the same job id (``me`` may be among them)."""
    older = [c for c in claims if c.key != me.key and c.order < me.order]
    same_cluster = [c for c in older if me.clusters and c.clusters & me.clusters]
    if same_cluster:
        return Ownership(min(same_cluster, key=lambda c: c.order).key)
    unknown = [c for c in older if not c.clusters or not me.clusters]
    if unknown:
        return Ownership(min(unknown, key=lambda c: c.order).key, certain=False)
    return OWNS


def duplicate(spec: JobSpec, obs: Observation, owner: Key) -> Decision:
    """The decision for a claim that does not own its job: never a call to Elasticsearch.

    Finalizer bookkeeping (a Kubernetes write) is done as for any job, so that the claim is ready
    once it takes over; a duplicate being deleted releases its finalizer without touching the
    server, whatever its deletionPolicy.
    """
    state = obs.state if isinstance(obs, JobObserved) else ABSENT if isinstance(obs, JobAbsent) else UNKNOWN
    who = f"RollupJob {owner[0]}/{owner[1]}"
    if spec.deleting:
        msg = f"not the owner of rollup job [{spec.job_id}] ({who} is): deleted without touching the server"
        return Decision(Verdict(PROGRESSING, "Deleting", msg, state), REMOVE_FINALIZER if spec.has_finalizer else None)
    if spec.wants_finalizer and not spec.has_finalizer:
        return Decision(Verdict(PROGRESSING, "AddingFinalizer", "adding the cleanup finalizer (deletionPolicy: Delete)", state), ADD_FINALIZER)
    if not spec.wants_finalizer and spec.has_finalizer:
        return Decision(Verdict(PROGRESSING, "RemovingFinalizer", "removing the cleanup finalizer (deletionPolicy: Retain)", state), REMOVE_FINALIZER)
    if isinstance(obs, Failure) and not obs.transient:  # its own connection cannot be used: say that first
        return Decision(Verdict(STALLED, obs.kind, f"{obs.message}; besides, {who} owns rollup job [{spec.job_id}] on "
                                f"this cluster (the oldest RollupJob naming it), so this one sends nothing", state))
    msg = (f"rollup job [{spec.job_id}] on this cluster is managed by {who}, the oldest RollupJob naming it; "
           f"this one sends nothing to Elasticsearch and takes over if that one goes away")
    return Decision(Verdict(STALLED, DUPLICATE, msg, state))


def resolved_event(spec: JobSpec) -> tuple[str, str, str]:
    return ("Normal", RESOLVED, f"no older RollupJob names rollup job [{spec.job_id}] on this cluster any more; this one manages it now")
