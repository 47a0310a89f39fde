"""Typed, validated views of the two custom resources.

Everything the operator reads from a ``RollupJob`` or ``ElasticsearchConnection`` goes through
here once: defaults are applied, durations parsed, and anything the CRD schema could not reject
becomes an :class:`InvalidSpec` with a message that says what to fix. No I/O.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any, Mapping, NamedTuple

from rollup_operator.job.config import InvalidSpec, config_to_es
from rollup_operator.kube.names import InvalidName, require as _require_name

#: spec.maxResponseSize: the default and the ceiling (the CRD says both too). Measured on the emulator (8.17
#: and 9.1 answers alike): GET _rollup/job/_all of 2,000 seeded jobs is 1,172,010 bytes, 586 bytes a job; a
#: job with several terms and metrics is larger, allow 2 KiB: 32 MiB holds ~57,000 seeded jobs and ~16,000
#: jobs of 2 KiB. Enforced while reading by bounded_node.py.
DEFAULT_MAX_RESPONSE_BYTES = 32 * 1024 * 1024
MAX_RESPONSE_BYTES = 256 * 1024 * 1024

GROUP = "rollup.esops.dev"
VERSION = "v1alpha1"
API_VERSION = f"{GROUP}/{VERSION}"
JOB_KIND = "RollupJob"
JOB_PLURAL = "rollupjobs"
CONNECTION_KIND = "ElasticsearchConnection"
CONNECTION_PLURAL = "elasticsearchconnections"
#: spec.engine of a connection (engine/dialect.py builds the dialect for each).
ENGINES = ("auto", "elasticsearch", "opensearch")

FINALIZER = f"{GROUP}/cleanup"
#: Set to "true" on a RollupJob that is being deleted to release the finalizer without touching
#: the Elasticsearch job (for when the cluster is gone for good).
RELEASE_ANNOTATION = f"{GROUP}/release-finalizer"
#: Set to "true" to pause enforcement, as an alternative to ``spec.suspend``.
SUSPEND_ANNOTATION = f"{GROUP}/suspend"

#: The shortest ``spec.syncInterval`` acted on (the schema accepts "1ms").
MIN_SYNC_INTERVAL_S = 1.0

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


def job_id_problem(job_id: str) -> str | None:
    """Why a job id cannot address exactly one rollup job, or None. Same rules as the CRD's CEL."""
    if job_id in (".", ".."):
        return "cannot be used: '.' and '..' are path segments that the HTTP client resolves, so the calls would reach other endpoints"
    if job_id == "_all":
        return "cannot be used: '_all' means every job in GET _rollup/job/_all, so it cannot address one job"
    if _JOB_ID_CONTROL.search(job_id):
        return "cannot be used: it contains a control character (NUL, CR, LF, tab...)"
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
    _object_name("spec.connectionRef.name", conn)
    job_id = spec.get("jobId") or name
    if not isinstance(job_id, str) or not job_id or "/" in job_id or len(job_id) > 512:
        raise InvalidSpec(f"spec.jobId {job_id!r} is not a valid rollup job id (non-empty, no '/', at most 512 characters)")
    why = job_id_problem(job_id)
    if why:  # the CRD refuses these at admission; objects stored before that rule get this
        raise InvalidSpec(f"spec.jobId {job_id!r} {why}")
    if re.search(r"[*,\s]", job_id):  # the rest of the CRD's pattern '^[^/*,\s]+$'
        raise InvalidSpec(f"spec.jobId {job_id!r} is not a valid rollup job id: no '*', ',' or white space")

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


# --- ElasticsearchConnection -------------------------------------------------------------------


@dataclass(frozen=True)
class SecretKeyRef:
    name: str
    key: str


@dataclass(frozen=True)
class ConnectionSpec:
    namespace: str
    name: str
    generation: int
    urls: tuple[str, ...]
    username: SecretKeyRef | None = None
    password: SecretKeyRef | None = None
    api_key: SecretKeyRef | None = None
    ca: SecretKeyRef | None = None
    insecure_skip_verify: bool = False
    request_timeout_s: float = 30.0
    sync_interval_s: float = 60.0
    max_concurrent_requests: int = 64
    max_response_bytes: int = DEFAULT_MAX_RESPONSE_BYTES
    engine: str = "auto"  # auto | elasticsearch | opensearch (engine/dialect.py)

    @property
    def secret_names(self) -> frozenset[str]:
        refs = (self.username, self.password, self.api_key, self.ca)
        return frozenset(r.name for r in refs if r is not None)


#: Ceiling of spec.requestTimeout (the CRD says the same with a CEL rule).
MAX_REQUEST_TIMEOUT_S = 300.0


def _response_size(value: Any) -> int:
    """spec.maxResponseSize ("32Mi", "512Ki") in bytes, at most 256Mi."""
    m = re.fullmatch(r"([1-9][0-9]{0,9})(Ki|Mi)", str(value))
    if not m:
        raise InvalidSpec(f"spec.maxResponseSize {value!r} must be a size in Ki or Mi, e.g. 32Mi")
    size = int(m.group(1)) * (1024 if m.group(2) == "Ki" else 1024 * 1024)
    if size > MAX_RESPONSE_BYTES:
        raise InvalidSpec("spec.maxResponseSize must be at most 256Mi")
    return size


def _object_name(field: str, name: Any) -> None:
    """Refuse a name that is not a Kubernetes object name (it could walk out of the namespace's path)."""
    try:
        _require_name(field, name)
    except InvalidName as e:
        raise InvalidSpec(str(e))


def connection_spec_from_body(body: Mapping[str, Any]) -> ConnectionSpec:
    meta = body.get("metadata") or {}
    spec = body.get("spec") or {}
    urls: list[str] = []
    if spec.get("url"):
        urls.append(spec["url"])
    urls.extend(spec.get("urls") or [])
    if not urls:
        raise InvalidSpec("spec.url (or spec.urls) is required: the Elasticsearch endpoint, e.g. https://es:9200")
    for u in urls:
        if not re.match(r"^https?://[^\s/]+", str(u)):
            raise InvalidSpec(f"spec.url {u!r} must start with http:// or https:// and name a host")

    auth = spec.get("auth") or {}
    username = password = api_key = None
    basic = auth.get("basic")
    if basic:
        ref = basic.get("secretRef") or {}
        if not ref.get("name"):
            raise InvalidSpec("spec.auth.basic.secretRef.name is required")
        _object_name("spec.auth.basic.secretRef.name", ref["name"])
        username = SecretKeyRef(ref["name"], basic.get("usernameKey", "username"))
        password = SecretKeyRef(ref["name"], basic.get("passwordKey", "password"))
    ak = auth.get("apiKey")
    if ak:
        if basic:
            raise InvalidSpec("spec.auth: set either basic or apiKey, not both")
        ref = ak.get("secretRef") or {}
        if not ref.get("name"):
            raise InvalidSpec("spec.auth.apiKey.secretRef.name is required")
        _object_name("spec.auth.apiKey.secretRef.name", ref["name"])
        api_key = SecretKeyRef(ref["name"], ak.get("key", "api_key"))

    tls = spec.get("tls") or {}
    ca = None
    if tls.get("caSecretRef"):
        ref = tls["caSecretRef"]
        if not ref.get("name"):
            raise InvalidSpec("spec.tls.caSecretRef.name is required")
        _object_name("spec.tls.caSecretRef.name", ref["name"])
        ca = SecretKeyRef(ref["name"], ref.get("key", "ca.crt"))

    sync_interval_s = parse_duration(spec.get("syncInterval", "60s"), what="spec.syncInterval")
    if sync_interval_s < MIN_SYNC_INTERVAL_S:
        raise InvalidSpec(
            f"spec.syncInterval must be at least {MIN_SYNC_INTERVAL_S:g}s, got {spec.get('syncInterval')!r}: every sync "
            f"reads all jobs on the connection, a shorter period would hammer Elasticsearch"
        )

    max_conc = int(spec.get("maxConcurrentRequests", 64))
    if not 1 <= max_conc <= 4096:
        raise InvalidSpec("spec.maxConcurrentRequests must be between 1 and 4096")

    request_timeout_s = parse_duration(spec.get("requestTimeout", "30s"), what="spec.requestTimeout")
    if request_timeout_s > MAX_REQUEST_TIMEOUT_S:
        raise InvalidSpec(f"spec.requestTimeout must be at most {int(MAX_REQUEST_TIMEOUT_S // 60)}m: a longer one holds a request slot "
                          f"for that long on a server that never answers")
    engine = spec.get("engine", "auto")
    if engine not in ENGINES:
        raise InvalidSpec(f"spec.engine {engine!r} must be one of {', '.join(ENGINES)}")
    return ConnectionSpec(
        namespace=meta.get("namespace", ""),
        name=meta.get("name", ""),
        generation=int(meta.get("generation") or 0),
        urls=tuple(urls),
        username=username,
        password=password,
        api_key=api_key,
        ca=ca,
        insecure_skip_verify=bool(tls.get("insecureSkipVerify", False)),
        request_timeout_s=request_timeout_s,
        sync_interval_s=sync_interval_s,
        max_concurrent_requests=max_conc,
        max_response_bytes=_response_size(spec.get("maxResponseSize", "32Mi")),
        engine=engine,
    )
