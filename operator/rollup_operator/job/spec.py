"""The typed, validated view of a RollupJob, and what every custom resource shares: the group,
version, kinds and plurals, durations, object keys, resourceVersion, the object-name check
(connection_spec.py is the ElasticsearchConnection's view).

Everything the operator reads from a ``RollupJob`` goes through here once: defaults are applied,
durations parsed, and anything the CRD schema could not reject becomes an :class:`InvalidSpec`
with a message that says what to fix. No I/O.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any, Mapping, NamedTuple

from rollup_operator.job.config import InvalidSpec, config_to_es
from rollup_operator.kube.names import InvalidName, require as _require_name

GROUP = "rollup.esops.dev"
VERSION = "v1alpha1"
API_VERSION = f"{GROUP}/{VERSION}"
JOB_KIND = "RollupJob"
JOB_PLURAL = "rollupjobs"
CONNECTION_KIND = "ElasticsearchConnection"
CONNECTION_PLURAL = "elasticsearchconnections"

FINALIZER = f"{GROUP}/cleanup"
#: Set to "true" on a RollupJob that is being deleted to release the finalizer without touching
#: the Elasticsearch job (for when the cluster is gone for good).
RELEASE_ANNOTATION = f"{GROUP}/release-finalizer"
#: Set to "true" to pause enforcement, as an alternative to ``spec.suspend``.
SUSPEND_ANNOTATION = f"{GROUP}/suspend"

_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(nanos|micros|ms|s|m|h|d)\s*$")
_UNIT_SECONDS = {"nanos": 1e-9, "micros": 1e-6, "ms": 1e-3, "s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0}


def parse_duration(value: Any, *, what: str) -> float:
    """Parse an Elasticsearch/Kubernetes style duration ("30s", "500ms", "2m") into seconds."""
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return float(value)
    if not isinstance(value, str):
        raise InvalidSpec(f"{what}: expected a duration such as '30s', got {value!r}")
    m = _DURATION.match(value)
    if not m:
        raise InvalidSpec(f"{what}: {value!r} is not a duration; use a number and a unit (ms, s, m, h, d), e.g. '30s'")
    return float(m.group(1)) * _UNIT_SECONDS[m.group(2)]


def _truthy(value: Any) -> bool:
    return str(value).strip().lower() in {"1", "true", "yes", "on"}


#: A namespaced object: (namespace, name).
Key = tuple[str, str]


def key_of(body: Mapping[str, Any]) -> Key:
    meta = body.get("metadata") or {}
    return (str(meta.get("namespace", "")), str(meta.get("name", "")))


def resource_version(meta: Mapping[str, Any]) -> int:
    """metadata.resourceVersion as a number (0 if absent), to tell newer from older copies."""
    try:
        return int(meta.get("resourceVersion") or 0)
    except (TypeError, ValueError):
        return 0


@dataclass(frozen=True)
class Backoff:
    initial: float = 1.0
    maximum: float = 60.0

    def delay(self, attempt: int) -> float:
        """Capped exponential delay before retry number ``attempt`` (1-based)."""
        if attempt <= 0:
            return 0.0
        factor: int = 2 ** (attempt - 1)  # attempt >= 1: an int (typeshed types int ** int as Any)
        return min(self.maximum, self.initial * factor)


@dataclass(frozen=True)
class JobSpec:
    namespace: str
    name: str
    uid: str
    generation: int
    job_id: str
    connection: str
    desired: str  # "started" | "stopped"
    stop_timeout: str = "30s"  # as given, sent verbatim to Elasticsearch
    stop_timeout_s: float = 30.0
    wait_for_completion: bool = True
    backoff: Backoff = field(default_factory=Backoff)
    deletion_policy: str = "Retain"
    suspend: bool = False
    config: dict[str, Any] | None = None  # Elasticsearch-shaped (snake_case) job config, without id
    deleting: bool = False
    release_finalizer: bool = False
    has_finalizer: bool = False
    #: deletionPolicy Delete needs the cleanup finalizer (derived; a plain attribute for the decision).
    wants_finalizer: bool = field(init=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "wants_finalizer", self.deletion_policy == "Delete")


_JOB_ID_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


def job_id_problem(job_id: object) -> str | None:
    """Why a job id cannot address exactly one rollup job, or None: the CRD's rules (its pattern
    ``^[^/*,\\s]+$``, maxLength 512 and CEL), for objects stored before them and for RollupMigration."""
    if not isinstance(job_id, str) or not job_id or "/" in job_id or len(job_id) > 512:
        return "is not a valid rollup job id (non-empty, no '/', at most 512 characters)"
    if job_id in (".", ".."):
        return "cannot be used: '.' and '..' are path segments that the HTTP client resolves, so the calls would reach other endpoints"
    if job_id == "_all":
        return "cannot be used: '_all' means every job in GET _rollup/job/_all, so it cannot address one job"
    if _JOB_ID_CONTROL.search(job_id):
        return "cannot be used: it contains a control character (NUL, CR, LF, tab...)"
    if re.search(r"[*,\s]", job_id):  # the rest of the CRD's pattern
        return "is not a valid rollup job id: no '*', ',' or white space"
    return None


def job_spec_from_body(body: Mapping[str, Any]) -> JobSpec:
    meta = body.get("metadata") or {}
    spec = body.get("spec") or {}
    annotations = meta.get("annotations") or {}
    name = meta.get("name", "")
    desired = spec.get("desiredState")
    if desired not in ("started", "stopped"):
        raise InvalidSpec(f"spec.desiredState must be 'started' or 'stopped', got {desired!r}")
    conn = (spec.get("connectionRef") or {}).get("name")
    if not conn or not isinstance(conn, str):
        raise InvalidSpec("spec.connectionRef.name is required: name the ElasticsearchConnection in this namespace")
    object_name("spec.connectionRef.name", conn)
    job_id = spec.get("jobId") or name
    why = job_id_problem(job_id)
    if why:  # the CRD refuses these at admission; objects stored before that rule get this
        raise InvalidSpec(f"spec.jobId {job_id!r} {why}")

    stop = spec.get("stop") or {}
    stop_timeout = stop.get("timeout", "30s")
    stop_timeout_s = parse_duration(stop_timeout, what="spec.stop.timeout")
    if stop_timeout_s <= 0:
        raise InvalidSpec("spec.stop.timeout must be greater than zero")
    wait = stop.get("waitForCompletion", True)
    if not isinstance(wait, bool):
        raise InvalidSpec("spec.stop.waitForCompletion must be true or false")

    b = spec.get("backoff") or {}
    initial = parse_duration(b.get("initial", "1s"), what="spec.backoff.initial")
    maximum = parse_duration(b.get("max", "60s"), what="spec.backoff.max")
    if initial <= 0 or maximum < initial:
        raise InvalidSpec("spec.backoff: initial must be > 0 and max must be >= initial")

    policy = spec.get("deletionPolicy", "Retain")
    if policy not in ("Retain", "Delete"):
        raise InvalidSpec(f"spec.deletionPolicy must be 'Retain' or 'Delete', got {policy!r}")

    config = spec.get("config")
    es_config = config_to_es(config) if config else None

    return JobSpec(
        namespace=meta.get("namespace", ""),
        name=name,
        uid=meta.get("uid", ""),
        generation=int(meta.get("generation") or 0),
        job_id=job_id,
        connection=conn,
        desired=desired,
        stop_timeout=str(stop_timeout),
        stop_timeout_s=stop_timeout_s,
        wait_for_completion=wait,
        backoff=Backoff(initial, maximum),
        deletion_policy=policy,
        suspend=bool(spec.get("suspend", False)) or _truthy(annotations.get(SUSPEND_ANNOTATION, "")),
        config=es_config,
        deleting=bool(meta.get("deletionTimestamp")),
        release_finalizer=_truthy(annotations.get(RELEASE_ANNOTATION, "")),
        has_finalizer=FINALIZER in (meta.get("finalizers") or []),
    )


class JobBody(NamedTuple):
    """A RollupJob's object, read once (store.put_job): its key, resourceVersion, and its spec or
    why it cannot be acted on."""

    key: Key
    rv: int
    spec: JobSpec | None
    invalid: str | None


def read_job(body: Mapping[str, Any]) -> JobBody:
    try:
        spec, invalid = job_spec_from_body(body), None
    except InvalidSpec as e:
        spec, invalid = None, str(e)
    return JobBody(key_of(body), resource_version(body.get("metadata") or {}), spec, invalid)


def object_name(field: str, name: Any) -> None:
    """Refuse a name that is not a Kubernetes object name (it could walk out of the namespace's path)."""
    try:
        _require_name(field, name)
    except InvalidName as e:
        raise InvalidSpec(str(e))
