"""The typed, validated view of an ElasticsearchConnection: defaults applied, durations and sizes
parsed, Secret names checked as object names before they can reach a request path, and anything
the CRD schema could not reject an :class:`InvalidSpec` that says what to fix. No I/O."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any, Mapping

from rollup_operator.job.config import InvalidSpec
from rollup_operator.job.spec import object_name, parse_duration

#: spec.maxResponseSize: the default and the ceiling (the CRD says both too). Measured on the emulator (8.17
#: and 9.1 answers alike): GET _rollup/job/_all of 2,000 seeded jobs is 1,172,010 bytes, 586 bytes a job; a
#: job with several terms and metrics is larger, allow 2 KiB: 32 MiB holds ~57,000 seeded jobs and ~16,000
#: jobs of 2 KiB. Enforced while reading by bounded_node.py.
DEFAULT_MAX_RESPONSE_BYTES = 32 * 1024 * 1024
MAX_RESPONSE_BYTES = 256 * 1024 * 1024

#: spec.engine of a connection (engine/dialect.py builds the dialect for each).
ENGINES = ("auto", "elasticsearch", "opensearch")

#: The shortest ``spec.syncInterval`` acted on (the schema accepts "1ms").
MIN_SYNC_INTERVAL_S = 1.0


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
        object_name("spec.auth.basic.secretRef.name", ref["name"])
        username = SecretKeyRef(ref["name"], basic.get("usernameKey", "username"))
        password = SecretKeyRef(ref["name"], basic.get("passwordKey", "password"))
    ak = auth.get("apiKey")
    if ak:
        if basic:
            raise InvalidSpec("spec.auth: set either basic or apiKey, not both")
        ref = ak.get("secretRef") or {}
        if not ref.get("name"):
            raise InvalidSpec("spec.auth.apiKey.secretRef.name is required")
        object_name("spec.auth.apiKey.secretRef.name", ref["name"])
        api_key = SecretKeyRef(ref["name"], ak.get("key", "api_key"))

    tls = spec.get("tls") or {}
    ca = None
    if tls.get("caSecretRef"):
        ref = tls["caSecretRef"]
        if not ref.get("name"):
            raise InvalidSpec("spec.tls.caSecretRef.name is required")
        object_name("spec.tls.caSecretRef.name", ref["name"])
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
