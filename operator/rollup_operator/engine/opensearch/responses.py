"""The OpenSearch rollup dialect, pure: job bodies, states and errors mapped onto the operator's.

The job layer speaks one language, Elasticsearch's: a job config shaped like ``GET _rollup/job``'s
``config`` (what ``job_config.config_to_es`` builds and ``config_differences`` compares), the
states of :mod:`observations`, and its outcomes. This module translates OpenSearch's
``_plugins/_rollup/jobs`` documents into that language and back, so drift, ConfigConflict and
export work unchanged:

* ``to_opensearch(config)``: the body of ``PUT _plugins/_rollup/jobs/<id>`` from an ES-shaped config
  (Quartz cron with seconds ``0 M H DOM MON DOW`` -> OpenSearch's 5-field cron; ``terms.fields``
  -> one ``terms`` dimension each; ``date_histogram.delay`` -> the job's ``delay`` in ms; always
  ``continuous: true``, since an Elasticsearch job is continuous);
* ``to_es_config(rollup)``: the reverse, for a job read from the server;
* ``state_of(enabled, metadata)``: ``enabled`` (GET, real time) with ``_explain``'s status (search
  based, ~1-2 s behind) -> started / stopping / stopped / finished / failed (the server's reason
  in ``JobObserved.reason``);
* ``error(status, body, api)``: the three "missing" answers -> JobAbsent, the rest -> Failure.

No I/O. ``../shared/opensearch/transcript.md`` has the real answers these functions read.
"""

from __future__ import annotations

import re
from typing import Any, Mapping

from rollup_operator.engine.elasticsearch import responses as answers
from rollup_operator.job.config import InvalidSpec
from rollup_operator.job.observations import (
    FAILED,
    FINISHED,
    FORBIDDEN,
    STARTED,
    STOPPED,
    STOPPING,
    UNAUTHORIZED,
    UNAVAILABLE,
    Failure,
    JobAbsent,
    JobObserved,
    Outcome,
    Refused,
)

METRICS = ("min", "max", "sum", "avg", "value_count")
STAT_FIELDS = ("pages_processed", "documents_processed", "rollups_indexed", "index_time_in_millis",
               "search_time_in_millis")
_DELAY = re.compile(r"^(\d+)(d|h|m|s|ms)$")
_UNIT_MS = {"d": 86_400_000, "h": 3_600_000, "m": 60_000, "s": 1000, "ms": 1}


def _delay_ms(text: str) -> int:
    m = _DELAY.match(text)
    if not m:
        raise InvalidSpec(f"spec.config.groups.dateHistogram.delay {text!r}: OpenSearch needs a whole number of d, h, m, s or ms")
    return int(m.group(1)) * _UNIT_MS[m.group(2)]


def _delay_text(ms: int) -> str:
    for unit in ("d", "h", "m", "s"):
        if ms % _UNIT_MS[unit] == 0:
            return f"{ms // _UNIT_MS[unit]}{unit}"
    return f"{ms}ms"


def cron_to_opensearch(quartz: str) -> str:
    """``0 M H DOM MON DOW [YEAR]`` (Quartz, seconds first) -> ``M H DOM MON DOW``."""
    parts = quartz.split()
    if len(parts) not in (6, 7) or parts[0] != "0" or (len(parts) == 7 and parts[6] != "*"):
        raise InvalidSpec(f"spec.config.cron {quartz!r}: OpenSearch runs jobs on a cron with minutes; use a Quartz "
                          f"cron whose seconds field is 0 and without a year, e.g. \"0 */5 * * * ?\"")
    return " ".join("*" if p == "?" else p for p in parts[1:6])


def cron_to_quartz(expr: str) -> str:
    """The reverse of :func:`cron_to_opensearch` (``?`` in the day field that is ``*``)."""
    m, h, dom, mon, dow = (expr.split() + ["*"] * 5)[:5]
    if dow == "*":
        dow = "?"
    elif dom == "*":
        dom = "?"
    return f"0 {m} {h} {dom} {mon} {dow}"


def to_opensearch(config: Mapping[str, Any], enabled: bool = False) -> dict[str, Any]:
    """The body of ``PUT _plugins/_rollup/jobs/<id>`` for an ES-shaped config (``config_to_es``)."""
    groups = config["groups"]
    dh = dict(groups["date_histogram"])
    hist: dict[str, Any] = {"source_field": dh["field"], "timezone": dh.get("time_zone") or "UTC"}
    for k in ("fixed_interval", "calendar_interval"):
        if dh.get(k):
            hist[k] = dh[k]
    dims: list[dict[str, Any]] = [{"date_histogram": hist}]
    dims += [{"terms": {"source_field": f}} for f in (groups.get("terms") or {}).get("fields", [])]
    h = groups.get("histogram") or {}
    dims += [{"histogram": {"source_field": f, "interval": h["interval"]}} for f in h.get("fields", [])]
    metrics = [{"source_field": m["field"], "metrics": [{name: {}} for name in m["metrics"]]}
               for m in config.get("metrics") or []]
    return {"rollup": {
        "enabled": enabled,
        "schedule": {"cron": {"expression": cron_to_opensearch(config["cron"]), "timezone": "UTC"}},
        "description": "managed by rollup-operator",
        "source_index": config["index_pattern"],
        "target_index": config["rollup_index"],
        "page_size": int(config.get("page_size") or 1000),
        "delay": _delay_ms(dh["delay"]) if dh.get("delay") else 0,
        "continuous": True,
        "dimensions": dims,
        "metrics": metrics,
    }}


def to_es_config(job_id: str, rollup: Mapping[str, Any]) -> dict[str, Any]:
    """An OpenSearch job document (``rollup``) as an ES-shaped config, for comparison and export."""
    dh: dict[str, Any] = {}
    terms: list[str] = []
    hist_fields: list[str] = []
    hist_interval: Any = None
    for dim in rollup.get("dimensions") or []:
        if "date_histogram" in dim:
            d = dim["date_histogram"]
            dh = {"field": d.get("source_field")}
            for k in ("fixed_interval", "calendar_interval"):
                if d.get(k):
                    dh[k] = d[k]
            dh["time_zone"] = d.get("timezone") or "UTC"
        elif "terms" in dim:
            terms.append(dim["terms"].get("source_field"))
        elif "histogram" in dim:
            hist_fields.append(dim["histogram"].get("source_field"))
            hist_interval = dim["histogram"].get("interval")
    delay = rollup.get("delay")
    if isinstance(delay, int) and delay > 0 and dh:
        dh["delay"] = _delay_text(delay)
    groups: dict[str, Any] = {"date_histogram": dh}
    if terms:
        groups["terms"] = {"fields": terms}
    if hist_fields:
        groups["histogram"] = {"fields": hist_fields, "interval": int(hist_interval) if hist_interval else 0}
    sched = rollup.get("schedule") or {}
    if "cron" in sched:
        cron = cron_to_quartz(str(sched["cron"].get("expression", "")))
    else:  # an interval schedule has no cron: named so that it differs from any spec's cron
        iv = sched.get("interval") or {}
        cron = f"every {iv.get('period')} {str(iv.get('unit', '')).lower()}"
    out: dict[str, Any] = {
        "id": job_id,
        "index_pattern": rollup.get("source_index"),
        "rollup_index": rollup.get("target_index"),
        "cron": cron,
        "page_size": rollup.get("page_size"),
        "groups": groups,
        "metrics": [{"field": m.get("source_field"), "metrics": [k for x in m.get("metrics") or [] for k in x]}
                    for m in rollup.get("metrics") or []],
        "timeout": "20s",
    }
    if rollup.get("continuous") is False:
        out["continuous"] = False  # one-shot: no Elasticsearch equivalent, so never equal to a spec
    return out


def state_of(enabled: bool, metadata: Mapping[str, Any] | None) -> str:
    """The operator's state of a job from its ``enabled`` flag and ``_explain``'s ``rollup_metadata``:
    init, started and retry are started while enabled; finished and failed are kept as they are."""
    status = (metadata or {}).get("status")
    if status in (FAILED, FINISHED):
        return str(status)
    if enabled:
        return STARTED  # init, started, retry, or no metadata yet: armed on its schedule
    # Disabled: stopped once the metadata says so. "started" (or "retry") is a page still running or
    # _explain not caught up with the stop yet (it lags the job document by up to ~2 s).
    return STOPPING if status in ("started", "retry") else STOPPED


#: OpenSearch's counter names that Elasticsearch spells otherwise (status.stats shows Elasticsearch's).
_ES_STAT = {"index_time_in_millis": "index_time_in_ms", "search_time_in_millis": "search_time_in_ms"}


def stats(metadata: Mapping[str, Any] | None) -> dict[str, int]:
    """The counters of ``rollup_metadata.stats``, named as Elasticsearch names them."""
    raw = (metadata or {}).get("stats") or {}
    out = {}
    for k in STAT_FIELDS:
        v = answers.stat_value(raw.get(k)) if isinstance(raw, Mapping) else None
        if v is not None:
            out[_ES_STAT.get(k, k)] = v
    return out


def observe(job_id: str, doc: Any, explain_entry: Any) -> JobObserved | Failure:
    """One job from its GET/list document (``{"_id", "_seq_no", "_primary_term", "rollup"}``) and
    its ``_explain`` entry (``{"metadata_id", "rollup_metadata"}`` or null)."""
    rollup = doc.get("rollup") if isinstance(doc, Mapping) else None
    if not isinstance(rollup, Mapping) or not isinstance(rollup.get("enabled"), bool):
        return answers.unexpected(f"GET _plugins/_rollup/jobs/{answers.clip(job_id, 80)}",
                                  "no rollup object with a boolean enabled")
    md = explain_entry.get("rollup_metadata") if isinstance(explain_entry, Mapping) else None
    md = md if isinstance(md, Mapping) else None
    state = state_of(rollup["enabled"], md)
    reason = answers.clip(str((md or {}).get("failure_reason") or "no reason given")) if state == FAILED else None
    seq = (doc["_seq_no"], doc["_primary_term"]) if all(isinstance(doc.get(k), int) for k in ("_seq_no", "_primary_term")) else None
    return JobObserved(state=state, stats=stats(md), config=to_es_config(job_id, rollup), reason=reason, seq=seq)


def is_missing(status: int, body: Any) -> bool:
    """The answers that mean "no such job": 404 ``index_not_found_exception`` on the config index
    (before any job exists), 404 ``Rollup not found`` (GET, _start, _stop), 404 ``Rollup <id> is not
    found`` (DELETE). (``_explain`` of a missing job is 200 ``{"<id>": null}``: see ``observe``.)"""
    if status != 404:
        return False
    etype, reason = answers.error_parts(body)
    return etype == "index_not_found_exception" and ".opendistro-ism-config" in reason or "not found" in reason.lower()


def _from_opensearch(status: int, body: Any) -> bool:
    """An OpenSearch error envelope: ``{"error": ..., "status": <the HTTP status>}``. Anything else
    (a proxy's page, another service) is reported by status code only, never repeated."""
    return isinstance(body, Mapping) and "error" in body and body.get("status") == status


def error(status: int, body: Any, api: str) -> Outcome:
    """An error answer to ``api`` (info|get|list|explain|stop|start|create|delete)."""
    if is_missing(status, body) and api not in ("info", "list", "explain"):
        return JobAbsent()
    if not _from_opensearch(status, body):
        return answers.foreign_error(status)
    etype, reason = answers.error_parts(body)
    if status == 401:
        return Failure(UNAUTHORIZED, f"OpenSearch rejected the credentials (401 {etype}): {reason}; check the connection's Secret")
    if status == 403:
        return Failure(FORBIDDEN, f"{reason} (403): grant the user the rollup permissions (cluster:admin/opendistro/rollup/*)")
    if api == "update" and status == 409:
        return Failure(UNAVAILABLE, f"rollup job changed on the server since it was read (409 {etype}); reading it again")
    if api == "update" and status == 400:
        return Refused("InvalidConfig", f"OpenSearch refused to update the job in place: {reason}")
    if api == "create" and status == 409:
        return Refused("JobIdReused", f"{reason}: a job with this id exists; choose a new spec.jobId")
    if api == "create" and status == 400:
        return Refused("InvalidConfig", f"OpenSearch refused the job config: {reason}")
    return Failure(UNAVAILABLE, f"OpenSearch answered {status} {etype}: {reason}".rstrip(": "))
