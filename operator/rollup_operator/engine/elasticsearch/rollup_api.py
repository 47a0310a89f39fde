"""The rollup API on the official async Elasticsearch client, answers mapped to domain outcomes.

Thin on purpose: one method per call, one function (``classify``) that turns every way a call
can fail into an :mod:`observations` value. Knows nothing of Kubernetes.
"""

from __future__ import annotations

import asyncio
import logging
import os
import re
import time
import warnings
from dataclasses import dataclass
from typing import Any, Awaitable, Callable

import elastic_transport
import elasticsearch
from elasticsearch import AsyncElasticsearch

from rollup_operator.engine.elasticsearch import responses as answers
from rollup_operator.engine import bounded_node
from rollup_operator import metrics
from rollup_operator.job.observations import (
    RESPONSE_TOO_LARGE,
    FORBIDDEN,
    NOT_ELASTICSEARCH,
    TLS_ERROR,
    UNAUTHORIZED,
    UNAVAILABLE,
    UNEXPECTED_RESPONSE,
    UNSUPPORTED_VERSION,
    Done,
    Failure,
    JobAbsent,
    JobObserved,
    Outcome,
    Refused,
    StopTimedOut,
    WrongState,
)

log = logging.getLogger(__name__)

# Rollups are "technical preview"/deprecated: the client warns on every call. The deprecation is
# reported once, in the connection's status, instead of in every log line.
warnings.filterwarnings("ignore", category=elasticsearch.ElasticsearchWarning)
try:  # elasticsearch >= 8.16
    from elasticsearch.exceptions import GeneralAvailabilityWarning

    warnings.filterwarnings("ignore", category=GeneralAvailabilityWarning)
except ImportError:  # pragma: no cover
    pass
# Before each rollup call the client works out the warning's stacklevel with inspect.stack(),
# which reads the source of every frame: 1-3 ms of event-loop time per call, for a warning that
# is ignored just above. This switch (read by the client at call time) skips that walk.
os.environ.setdefault("DISABLE_WARN_STACKLEVEL", "1")

_STATE_WAS = re.compile(r"[Ss]tate (?:was|is) \[([A-Za-z_]+)\]")
_USERINFO = re.compile(r"(?<=://)[^/@\s]+@")


def redact(text: str) -> str:
    """Remove credentials that could hide in a URL inside an error message."""
    return _USERINFO.sub("***@", text)


def _detail(exc: BaseException) -> str:
    """What went wrong, redacted. The transport's errors print as a bare "TLS error" /
    "Connection error" when the call was not retried; the cause (e.g. "certificate verify failed:
    unable to get local issuer certificate") is in their ``message``."""
    msg = getattr(exc, "message", None)
    if isinstance(exc, elastic_transport.TransportError) and not exc.errors and isinstance(msg, str) and msg:
        return redact(msg)
    return redact(str(exc))


def classify(exc: BaseException, api: str) -> Outcome:
    """Map an exception from the client to an outcome. ``api``: get|stop|start|create|delete|info."""
    if isinstance(exc, elasticsearch.UnsupportedProductError):
        return Failure(NOT_ELASTICSEARCH, "the server is not Elasticsearch: its answer lacks the X-Elastic-Product header")
    if isinstance(exc, elasticsearch.ApiError):
        status = exc.meta.status if exc.meta is not None else 0
        if not answers.from_elasticsearch(exc.meta.headers if exc.meta is not None else None):
            return answers.foreign_error(status)  # never repeat the body of a server that is not Elasticsearch
        etype, reason = answers.error_parts(exc.body)
        if status == 401:
            return Failure(UNAUTHORIZED, f"Elasticsearch rejected the credentials (401 {etype}): {reason}; check the connection's Secret")
        if status == 403:
            need = {"get": "monitor_rollup", "info": "monitor"}.get(api, "manage_rollup")
            return Failure(FORBIDDEN, f"{reason} (403): grant the user the cluster privilege {need}")
        if etype == "media_type_header_exception":
            return Failure(UNSUPPORTED_VERSION, f"the server refused the 8.x client's media type: {reason}")
        if etype == "timeout_exception" and api == "stop":
            m = _STATE_WAS.search(reason)
            return StopTimedOut(m.group(1).lower() if m else "stopping")
        if status == 404 and etype == "resource_not_found_exception":
            return JobAbsent()
        if api in ("start", "stop", "delete") and status == 500:
            m = _STATE_WAS.search(reason)
            if m and ("Cannot start" in reason or "Cannot stop" in reason or "Could not delete" in reason):
                return WrongState(m.group(1).lower(), reason)
        if api == "create" and status in (400, 409, 500):
            if "rollup usage" in reason:
                return Refused(
                    "RollupUsageRequired",
                    f"{reason}. Elasticsearch 8.15+ creates new rollup jobs only in clusters that already use "
                    f"rollups (an existing rollup job, or an index whose mapping has _meta._rollup); create the "
                    f"first job by hand or move to downsampling",
                )
            if status == 409:
                return Refused("JobIdReused", f"{reason}: a deleted job's id stays taken on its rollup index; choose a new spec.jobId")
            return Refused("InvalidConfig", f"Elasticsearch refused the job config: {reason}")
        return Failure(UNAVAILABLE, f"Elasticsearch answered {status} {etype}: {reason}".rstrip(": "))
    if isinstance(exc, elastic_transport.SerializationError):
        # Its message quotes the raw body, which may not come from Elasticsearch: not repeated.
        return Failure(UNEXPECTED_RESPONSE, f"unexpected answer to {api}: the body is not the JSON Elasticsearch sends")
    if isinstance(exc, (elastic_transport.TlsError, elasticsearch.SSLError)):
        return Failure(TLS_ERROR, f"TLS handshake with Elasticsearch failed: {_detail(exc)}; check spec.tls (caSecretRef / insecureSkipVerify)")
    if isinstance(exc, elastic_transport.ConnectionTimeout):
        return Failure(UNAVAILABLE, f"Elasticsearch did not answer in time: {_detail(exc)}")
    big = bounded_node.too_large(exc)
    if big is not None:
        return Failure(RESPONSE_TOO_LARGE, f"the answer to {api} is larger than spec.maxResponseSize ({big.limit} bytes): "
                                           f"it was not read further; raise spec.maxResponseSize (at most 256Mi) if the server really holds that many jobs")
    if isinstance(exc, (elastic_transport.ConnectionError, elastic_transport.TransportError, OSError, asyncio.TimeoutError)):
        return Failure(UNAVAILABLE, f"cannot reach Elasticsearch: {_detail(exc) or type(exc).__name__}")
    raise exc


async def _timed(api: str, call: Callable[[], Awaitable[Any]]) -> Any:
    start = time.monotonic()
    status = "error"
    try:
        resp = await call()
        status = str(resp.meta.status)
        return resp
    except elasticsearch.ApiError as e:
        status = str(e.meta.status if e.meta is not None else "error")
        raise
    finally:
        metrics.ES_REQUESTS.labels(api=api, status=status).observe(time.monotonic() - start)


@dataclass(frozen=True)
class ServerInfo:
    version: str | None  # None: GET / was forbidden (a user without the monitor privilege)
    deprecated: bool | None  # rollups deprecated on this version (8.11+)
    usage_rule: bool | None  # new jobs need existing rollup usage (8.15+)
    major: int = 0
    cluster_uuid: str | None = None  # from GET /; identifies the cluster (ownership.py)

    @classmethod
    def of(cls, number: str, cluster_uuid: str | None = None) -> "ServerInfo":
        parts = (number.split("-")[0].split(".") + ["0", "0"])[:2]
        try:
            major, minor = int(parts[0]), int(parts[1])
        except ValueError:
            major, minor = 0, 0
        return cls(number, deprecated=(major, minor) >= (8, 11), usage_rule=(major, minor) >= (8, 15), major=major,
                   cluster_uuid=cluster_uuid if isinstance(cluster_uuid, str) else None)


class Gateway:
    """Rollup calls for one connection. ``client`` is shared by every job on that connection."""

    engine = "elasticsearch"

    def __init__(self, client: AsyncElasticsearch):
        self.client = client
        self.deprecation_warning: str | None = None

    def _note_warning(self, resp: Any) -> None:
        headers = getattr(getattr(resp, "meta", None), "headers", None) or {}
        w = headers.get("warning")
        if w:
            self.deprecation_warning = answers.clip(w.split('"')[1] if '"' in w else w)

    async def info(self) -> dict[str, Any] | Failure:
        try:
            resp = await _timed("info", lambda: self.client.info())
            version = answers.server_version(resp.body)
            return version if isinstance(version, Failure) else dict(resp.body)
        except BaseException as e:  # noqa: BLE001 - classify re-raises what it does not know
            out = classify(e, "info")
            return out if isinstance(out, Failure) else Failure(UNAVAILABLE, f"unexpected answer to GET /: {out}")

    async def list_jobs(self) -> dict[str, JobObserved | Failure] | Failure:
        """Every job on the cluster, with one ``GET _rollup/job/_all``."""
        try:
            resp = await _timed("get_jobs", lambda: self.client.rollup.get_jobs(id="_all"))
        except BaseException as e:  # noqa: BLE001
            out = classify(e, "get")
            return out if isinstance(out, Failure) else Failure(UNAVAILABLE, f"unexpected answer to GET _rollup/job/_all: {out}")
        self._note_warning(resp)
        # Checked against the documented shape; a job whose entry is malformed maps to a Failure.
        return answers.job_list(resp.body)

    async def stop(self, job_id: str, *, wait: bool, timeout: str, timeout_s: float, request_timeout: float) -> Outcome:
        # The client must wait longer than the server does, and must never re-send a stop itself.
        rt = max(request_timeout, timeout_s + 10.0) if wait else request_timeout
        return await self._act(
            "stop",
            lambda: self.client.options(request_timeout=rt).rollup.stop_job(
                id=job_id, wait_for_completion=wait, timeout=timeout if wait else None
            ),
        )

    async def start(self, job_id: str) -> Outcome:
        return await self._act("start", lambda: self.client.rollup.start_job(id=job_id))

    async def create(self, job_id: str, config: dict[str, Any]) -> Outcome:
        return await self._act("create", lambda: self.client.rollup.put_job(id=job_id, **config))

    async def delete(self, job_id: str) -> Outcome:
        return await self._act("delete", lambda: self.client.rollup.delete_job(id=job_id))

    async def update(self, job_id: str, config: dict[str, Any], seen: JobObserved) -> Outcome:
        """Elasticsearch has no update of a rollup job (its observations carry no ``seq``, so the job
        layer never asks): refused without a request."""
        return Refused("ConfigConflict", f"Elasticsearch cannot update rollup job [{job_id}] in place")

    async def _act(self, api: str, call: Callable[[], Awaitable[Any]]) -> Outcome:
        try:
            resp = await _timed(api, call)
        except BaseException as e:  # noqa: BLE001
            return classify(e, api)
        self._note_warning(resp)
        return answers.acknowledged(api, resp.body) or Done()
