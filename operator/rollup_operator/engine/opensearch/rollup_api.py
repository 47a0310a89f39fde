"""The OpenSearch rollup dialect: the same methods the job layer calls on :class:`gateway.Gateway`.

Calls go through the transport of the connection's client (``elastic_transport``, which the
official Elasticsearch client runs on): the same pool, TLS, credentials and ``max_retries=0``, and
the same transport errors, which ``gateway.classify`` already maps. The Elasticsearch client's
own API methods cannot be used (they refuse an answer without ``X-Elastic-Product``); the
``opensearch-py`` client would mean a second HTTP stack, a second way to build credentials and TLS,
and other exception types for the same failures, for six plain JSON calls.

**The operator supplies the stop wait.** OpenSearch's ``_stop`` answers at once (and refuses
``wait_for_completion`` and ``timeout`` with 400), while a page in flight goes on for up to ~1 s
and ``_explain`` lags the job document by ~1-2 s. So ``stop(wait=True)`` sends ``_stop`` and then
watches the job until it is disabled, ``_explain`` says stopped and the counters stay still over
:attr:`settle_s`, or ``timeout_s`` passes (``StopTimedOut``, retried by the job layer as on
Elasticsearch). ``stop(wait=False)`` returns after ``_stop``; the shared reads confirm it (they
show ``stopping`` while ``_explain`` still says started).
"""

from __future__ import annotations

import asyncio
import time
from typing import Any
from urllib.parse import quote

from elasticsearch import AsyncElasticsearch

from rollup_operator.engine.elasticsearch import responses as answers
from rollup_operator import metrics
from rollup_operator.engine.opensearch import responses as osa
from rollup_operator.engine.elasticsearch.rollup_api import classify
from rollup_operator.job.config import InvalidSpec
from rollup_operator.job.observations import FAILED, FINISHED, STARTED, STOPPED, UNAVAILABLE, Refused, Done, Failure, JobAbsent, JobObserved, Outcome, StopTimedOut

ENGINE = "opensearch"
JOBS = "/_plugins/_rollup/jobs"
_JSON = {"accept": "application/json", "content-type": "application/json"}
PAGE = 200  # jobs per list request
EXPLAIN_BATCH = 50  # ids per _explain request (the ids go in the path)


def _path(job_id: str) -> str:
    return f"{JOBS}/{quote(job_id, safe='')}"


class OpenSearchGateway:
    """Rollup calls on an OpenSearch server, through the connection's client's transport."""

    engine = ENGINE
    #: How long the counters must stay still (and _explain say stopped) before a stop is confirmed.
    settle_s = 1.5
    #: _explain lags _stop by up to ~2 s: the first read that may confirm a stop comes this late.
    explain_lag_s = 2.0
    poll_s = 0.5

    def __init__(self, client: AsyncElasticsearch):
        self.client = client
        self.deprecation_warning: str | None = None

    async def _call(self, api: str, method: str, path: str, body: Any = None,
                    request_timeout: float | None = None) -> tuple[int, Any] | Failure:
        headers = {**dict(getattr(self.client, "_headers", {}) or {}), **_JSON}  # the client's auth headers
        start = time.monotonic()
        status = "error"
        try:
            kw: dict[str, Any] = {"headers": headers, "body": body}
            if request_timeout is not None:
                kw["request_timeout"] = request_timeout
            resp = await self.client.transport.perform_request(method, path, **kw)
            status = str(resp.meta.status)
            return resp.meta.status, resp.body
        except BaseException as e:  # noqa: BLE001 - classify re-raises what it does not know
            out = classify(e, api)
            return out if isinstance(out, Failure) else Failure(UNAVAILABLE, f"unexpected answer to {api}: {out}")
        finally:
            metrics.ES_REQUESTS.labels(api=api, status=status).observe(time.monotonic() - start)

    async def info(self) -> dict[str, Any] | Failure:
        res = await self._call("info", "GET", "/")
        if isinstance(res, Failure):
            return res
        status, body = res
        if status != 200:
            out = osa.error(status, body, "info")
            return out if isinstance(out, Failure) else Failure(UNAVAILABLE, f"GET / answered {status}")
        version = answers.server_version(body)
        return version if isinstance(version, Failure) else dict(body)

    async def _explain(self, ids: list[str]) -> dict[str, Any] | Failure:
        out: dict[str, Any] = {}
        for i in range(0, len(ids), EXPLAIN_BATCH):
            chunk = ",".join(quote(j, safe="") for j in ids[i:i + EXPLAIN_BATCH])
            res = await self._call("explain", "GET", f"{JOBS}/{chunk}/_explain")
            if isinstance(res, Failure):
                return res
            status, body = res
            if status != 200 or not isinstance(body, dict):
                out_ = osa.error(status, body, "explain")
                return out_ if isinstance(out_, Failure) else answers.unexpected("_explain", f"HTTP {status}")
            out.update(body)
        return out

    async def list_jobs(self) -> dict[str, JobObserved | Failure] | Failure:
        """Every job: ``GET _plugins/_rollup/jobs`` by pages, then their ``_explain``."""
        docs: dict[str, Any] = {}
        while True:
            res = await self._call("get_jobs", "GET", f"{JOBS}?size={PAGE}&from={len(docs)}")
            if isinstance(res, Failure):
                return res
            status, body = res
            if status == 404 and osa.is_missing(status, body):
                return {}  # no job was ever created: the config index does not exist yet
            if status != 200 or not isinstance(body, dict) or not isinstance(body.get("rollups"), list):
                out = osa.error(status, body, "list")
                return out if isinstance(out, Failure) and status != 200 else answers.unexpected(
                    f"GET {JOBS}", "no rollups array")
            page = [d for d in body["rollups"] if isinstance(d, dict) and isinstance(d.get("_id"), str)]
            docs.update((d["_id"], d) for d in page)
            total = body.get("total_rollups")
            if not page or not isinstance(total, int) or len(docs) >= total:
                break
        explained = await self._explain(sorted(docs)) if docs else {}
        if isinstance(explained, Failure):
            return explained
        return {jid: osa.observe(jid, doc, explained.get(jid)) for jid, doc in docs.items()}

    async def get(self, job_id: str) -> tuple[JobObserved | Failure | JobAbsent, dict[str, Any] | None]:
        """One job (GET, real time, and its _explain), with its document (``_seq_no``, ``_primary_term``)."""
        res = await self._call("get", "GET", _path(job_id))
        if isinstance(res, Failure):
            return res, None
        status, body = res
        if status != 200:
            out = osa.error(status, body, "get")
            return (out if isinstance(out, (Failure, JobAbsent)) else Failure(UNAVAILABLE, f"GET answered {status}")), None
        explained = await self._explain([job_id])
        if isinstance(explained, Failure):
            return explained, body
        return osa.observe(job_id, body, explained.get(job_id)), body

    async def stop(self, job_id: str, *, wait: bool, timeout: str, timeout_s: float, request_timeout: float) -> Outcome:
        out = await self._act("stop", "POST", f"{_path(job_id)}/_stop")
        if not wait or not isinstance(out, Done):
            return out
        return await self.wait_stopped(job_id, timeout_s)

    async def wait_stopped(self, job_id: str, timeout_s: float) -> Outcome:
        """After ``_stop``: Done once the job is disabled, ``_explain`` says stopped (or finished) and
        its counters have not moved for :attr:`settle_s`; StopTimedOut if that takes over ``timeout_s``."""
        t0 = time.monotonic()
        await asyncio.sleep(min(self.explain_lag_s, timeout_s))
        still_since: float | None = None  # since when the job has looked stopped with these counters
        last: dict[str, Any] | None = None
        while True:
            seen, _ = await self.get(job_id)
            if isinstance(seen, (Failure, JobAbsent)):
                return seen
            now = time.monotonic()
            if seen.state not in (STOPPED, FINISHED, FAILED):  # failed and finished jobs run no page
                still_since = None
            elif still_since is None or seen.stats != last:
                still_since = now
            elif now - still_since >= self.settle_s:
                return Done()
            last = seen.stats
            if now - t0 >= timeout_s:
                return StopTimedOut("stopping")
            await asyncio.sleep(self.poll_s)

    async def start(self, job_id: str) -> Outcome:
        return await self._act("start", "POST", f"{_path(job_id)}/_start")

    async def create(self, job_id: str, config: dict[str, Any]) -> Outcome:
        """PUT a new job (disabled: the job layer starts it if desired) from an ES-shaped config."""
        try:
            body = osa.to_opensearch(config)
        except InvalidSpec as e:  # a cron OpenSearch cannot run, a delay it cannot express: nothing is sent
            return Refused("InvalidConfig", f"spec.config cannot be an OpenSearch rollup job: {e}")
        return await self._act("create", "PUT", _path(job_id), body)

    async def update(self, job_id: str, config: dict[str, Any], seen: JobObserved) -> Outcome:
        """Replace the config of the job ``seen`` showed, guarded by the ``_seq_no``/``_primary_term`` it
        was read at (409 if it moved since: a transient failure, read again). It stays enabled as it was:
        OpenSearch changes schedule, page_size and delay in place (the rest: 400 "Not allowed to modify")."""
        if seen.seq is None:
            return Failure(UNAVAILABLE, f"rollup job [{job_id}] was read without its _seq_no: reading it again")
        path = f"{_path(job_id)}?if_seq_no={int(seen.seq[0])}&if_primary_term={int(seen.seq[1])}"
        try:
            body = osa.to_opensearch(config, enabled=seen.state == STARTED)
        except InvalidSpec as e:  # an edited cron or delay OpenSearch cannot run: nothing is sent, the edit is to fix
            return Refused("InvalidSpec", f"the edited spec.config cannot be an OpenSearch rollup job: {e}")
        return await self._act("update", "PUT", path, body)

    async def delete(self, job_id: str) -> Outcome:
        return await self._act("delete", "DELETE", _path(job_id))

    async def _act(self, api: str, method: str, path: str, body: Any = None) -> Outcome:
        res = await self._call(api, method, path, body)
        if isinstance(res, Failure):
            return res
        status, resp = res
        if 200 <= status < 300:
            return Done()
        return osa.error(status, resp, api)
