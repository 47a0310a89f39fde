"""``export`` from an OpenSearch server: its rollup jobs read once, as ``GET _rollup/job/_all`` entries.

The commands read Elasticsearch first (``GET _rollup/job/_all``, one request, unchanged); a server
that answers as no Elasticsearch does is asked ``GET /``, and if that names the OpenSearch
distribution its jobs are read from ``GET _plugins/_rollup/jobs`` (by pages) and ``_explain``, and
translated by engine/opensearch/responses.py into the Elasticsearch shape export already turns into
RollupJobs (``config`` as the operator compares it, ``status.job_state``). Reads only.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

from rollup_operator.engine.elasticsearch import responses as answers
from rollup_operator.engine.opensearch import responses as osa
from rollup_operator.engine.opensearch.rollup_api import EXPLAIN_BATCH, JOBS, PAGE
from rollup_operator.job.observations import Failure

_JSON = {"accept": "application/json"}


def _get(es: Any, path: str) -> tuple[int, Any]:
    """One GET through the client's transport (the client's own API methods refuse a server without
    X-Elastic-Product); an error status comes back as a value, not an exception."""
    import elastic_transport

    try:
        resp = es.transport.perform_request("GET", path, headers={**dict(getattr(es, "_headers", {}) or {}), **_JSON})
        return resp.meta.status, resp.body
    except elastic_transport.ApiError as e:  # pragma: no cover - transport versions that raise on 4xx
        return e.meta.status, e.body


def is_opensearch(es: Any) -> bool:
    """``GET /`` names the OpenSearch distribution (False for any other answer, or none)."""
    try:
        status, body = _get(es, "/")
    except Exception:  # noqa: BLE001 - unreachable, not JSON: not OpenSearch; the first error is reported
        return False
    version = body.get("version") if status == 200 and isinstance(body, dict) else None
    return isinstance(version, dict) and version.get("distribution") == "opensearch"


def read_jobs(es: Any) -> list[dict[str, Any]]:
    """Every job as an Elasticsearch ``GET _rollup/job/_all`` entry: ``{"config": {...}, "status": {"job_state"}}``.
    Raises RuntimeError with the server's answer when a read fails."""
    docs: dict[str, Any] = {}
    while True:
        status, body = _get(es, f"{JOBS}?size={PAGE}&from={len(docs)}")
        if status == 404 and osa.is_missing(status, body):
            return []  # no job was ever created: the config index does not exist yet
        if status != 200 or not isinstance(body, dict) or not isinstance(body.get("rollups"), list):
            raise RuntimeError(f"GET {JOBS} answered {status}: {answers.error_parts(body)[1] or 'no rollups array'}")
        page = [d for d in body["rollups"] if isinstance(d, dict) and isinstance(d.get("_id"), str)]
        docs.update((d["_id"], d) for d in page)
        total = body.get("total_rollups")
        if not page or not isinstance(total, int) or len(docs) >= total:
            break
    ids = sorted(docs)
    explained: dict[str, Any] = {}
    for i in range(0, len(ids), EXPLAIN_BATCH):
        status, body = _get(es, f"{JOBS}/{','.join(quote(j, safe='') for j in ids[i:i + EXPLAIN_BATCH])}/_explain")
        if status != 200 or not isinstance(body, dict):
            raise RuntimeError(f"GET {JOBS}/<ids>/_explain answered {status}")
        explained.update(body)
    out = []
    for jid in ids:
        seen = osa.observe(jid, docs[jid], explained.get(jid))
        if isinstance(seen, Failure) or seen.config is None:
            raise RuntimeError(f"rollup job {jid!r}: {getattr(seen, 'message', 'no config')}")
        out.append({"config": seen.config, "status": {"job_state": seen.state}})
    return out
