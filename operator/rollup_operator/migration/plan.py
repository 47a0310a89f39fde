"""How each rollup job maps to downsampling (Elastic's rollup -> downsampling migration). Pure, no I/O.

:func:`plan_job` takes a job's config (Elasticsearch's snake_case, as ``GET _rollup/job`` or
:func:`rollup_operator.job.config.config_to_es` gives it) and, optionally, what is known of its source
(:class:`SourceFacts`, read by ``rollup-operator migration-plan``) and returns the plan: verdict,
blockers with reasons, dimensions, metrics, what has no counterpart, and the request bodies
(``PUT _index_template``, ``PUT _ilm/policy`` with a ``downsample`` action, and the data stream
lifecycle alternative). :func:`plan_jobs` adds the checks across jobs sharing a source.
:func:`status_migration` is the small summary for a RollupJob's ``status.migration``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any, Iterable, Mapping

ALL_METRICS = ("min", "max", "sum", "value_count")
#: calendar interval -> (nearest fixed interval, what changes)
CALENDAR_TO_FIXED = {
    "minute": ("1m", "none in practice (a calendar minute is 60 s but for leap seconds)"),
    "hour": ("1h", "buckets are 3600 s in UTC; in time zones with non-hour offsets they no longer start on the local hour"),
    "day": ("1d", "buckets are 24 h starting at UTC midnight, not local midnight; DST days are no longer 23 or 25 h"),
    "week": ("7d", "buckets are 7 x 24 h aligned to the epoch (they start on Thursdays, 00:00 UTC), not on Mondays"),
    "month": ("30d", "buckets are 30 days and drift from calendar months (28-31 days): monthly totals must be re-aggregated at query time"),
    "quarter": ("90d", "buckets are 90 days and drift from calendar quarters; re-aggregate quarters at query time"),
    "year": ("365d", "buckets are 365 days and drift from calendar years (leap years); re-aggregate years at query time"),
}
_CAL_ALIASES = {"1m": "minute", "1h": "hour", "1d": "day", "1w": "week", "1M": "month", "1q": "quarter", "1y": "year"}
_COUNTER_NAME = re.compile(r"(^|[._-])(total|count|counter|requests|errors|bytes_sent|bytes_received)$|_total$|_count$", re.I)
_UNIT_MS = {"ms": 1, "s": 1000, "m": 60_000, "h": 3_600_000, "d": 86_400_000}
_DURATION = re.compile(r"^(\d+)(ms|s|m|h|d)$")
NAME_LIMIT = 255


@dataclass(frozen=True)
class SourceFacts:
    """What a read of the job's source showed (None: not known; status computes without it)."""

    data_stream: bool | None = None  # every part of index_pattern resolves to a data stream
    time_series: bool | None = None  # ... whose index.mode is time_series
    dimensions: tuple[str, ...] | None = None  # fields mapped time_series_dimension: true
    field_types: Mapping[str, str] = field(default_factory=dict)  # field -> mapping type
    metric_types: Mapping[str, str] = field(default_factory=dict)  # field -> time_series_metric
    downsample_interval: str | None = None  # index.downsample.interval of an already downsampled source
    note: str | None = None  # why it could not be read, when it could not


def interval_ms(value: str | None) -> int | None:
    m = _DURATION.match(str(value or ""))
    return int(m.group(1)) * _UNIT_MS[m.group(2)] if m else None


def _blocker(reason: str, message: str, proposal: str | None = None) -> dict[str, Any]:
    b = {"reason": reason, "message": message}
    if proposal:
        b["proposal"] = proposal
    return b


def resource_name(job_id: str) -> str:
    """Name of the index template and ILM policy proposed for a job."""
    base = re.sub(r"[^a-z0-9._-]+", "-", job_id.lower()).strip("-_.") or "job"
    return f"{base[:NAME_LIMIT - 13]}-downsampling"


def _metric_kind(fld: str, facts: SourceFacts | None) -> tuple[str, str]:
    mapped = (facts.metric_types if facts else {}).get(fld)
    if mapped in ("gauge", "counter"):
        return mapped, f"the source mapping already says time_series_metric: {mapped}"
    if _COUNTER_NAME.search(fld):
        return "counter", "the name reads as a monotonically increasing count (…_total, …_count, …counter): check it only grows"
    return "gauge", "a value that goes up and down (the default); make it counter only if it only ever grows"


def _after(fixed: str | None, delay: str | None) -> str:
    """The age at which a backing index is downsampled: a day, or two intervals plus the delay if longer."""
    iv, dl = interval_ms(fixed) or 0, interval_ms(delay) or 0
    days = max(1, -(-(2 * iv + dl) // _UNIT_MS["d"]))
    return f"{days}d"


def _requests(job_id: str, cfg: Mapping[str, Any], fixed: str, dims: list[str], metrics: list[dict[str, Any]],
              facts: SourceFacts | None, after: str) -> dict[str, Any]:
    name = resource_name(job_id)
    ts = "@timestamp"
    props: dict[str, Any] = {ts: {"type": "date"}}
    types = facts.field_types if facts else {}
    for d in dims:
        props[d] = {"type": types.get(d, "keyword"), "time_series_dimension": True}
    for m in metrics:
        t = types.get(m["field"])
        props[m["field"]] = {"type": t if t and t not in ("keyword", "date") else "double", "time_series_metric": m["type"]}
    patterns = [p.strip() for p in str(cfg.get("index_pattern", "")).split(",") if p.strip()]
    settings: dict[str, Any] = {"index.mode": "time_series"}
    if dims:
        settings["index.routing_path"] = list(dims)
    meta = {"description": f"time series data stream replacing rollup job {job_id}", "rollup_job": job_id}
    template = {"index_patterns": patterns, "data_stream": {}, "priority": 500,
                "template": {"settings": {**settings, "index.lifecycle.name": name}, "mappings": {"properties": props}},
                "_meta": meta}
    policy = {"policy": {"_meta": meta, "phases": {
        "hot": {"actions": {"rollover": {"max_age": "1d", "max_primary_shard_size": "50gb"}}},
        "warm": {"min_age": after, "actions": {"downsample": {"fixed_interval": fixed}}},
    }}}
    lifecycle = {"downsampling": [{"after": after, "fixed_interval": fixed}]}
    alt_template = {**template, "template": {"settings": settings, "mappings": {"properties": props},
                                             "lifecycle": lifecycle}}
    return {
        "indexTemplate": {"method": "PUT", "path": f"_index_template/{name}", "body": template},
        "ilmPolicy": {"method": "PUT", "path": f"_ilm/policy/{name}", "body": policy},
        "dataStreamLifecycle": {
            "note": "instead of ILM: this template (no index.lifecycle.name) and, for existing data streams, the lifecycle call",
            "indexTemplate": {"method": "PUT", "path": f"_index_template/{name}", "body": alt_template},
            "lifecycle": [{"method": "PUT", "path": f"_data_stream/{p}/_lifecycle", "body": lifecycle} for p in patterns],
        },
    }


def plan_job(config: Mapping[str, Any], facts: SourceFacts | None = None, job_id: str | None = None) -> dict[str, Any]:
    """The migration plan of one job. ``config`` is Elasticsearch-shaped; see the module docstring."""
    job_id = job_id or str(config.get("id") or "job")
    groups = config.get("groups") or {}
    dh = groups.get("date_histogram") or {}
    blockers: list[dict[str, Any]] = []
    changes: list[dict[str, Any]] = []

    fixed = dh.get("fixed_interval")
    calendar = dh.get("calendar_interval")
    if calendar and not fixed:
        unit = _CAL_ALIASES.get(calendar, calendar)
        near, what = CALENDAR_TO_FIXED.get(unit, ("1d", "buckets no longer follow the calendar"))
        blockers.append(_blocker("CalendarInterval", f"calendar_interval {calendar} has no downsampling counterpart: "
                                 "downsampling takes fixed intervals only",
                                 f"use fixed_interval {near}; what changes: {what}"))
        fixed = near
    elif fixed and interval_ms(fixed) is None:
        blockers.append(_blocker("UnsupportedInterval", f"fixed_interval {fixed} is not a whole number of ms, s, m, h or d"))

    if (groups.get("histogram") or {}).get("fields"):
        h = groups["histogram"]
        blockers.append(_blocker("HistogramGroup", f"histogram group on {', '.join(h['fields'])} (interval {h['interval']}): "
                                 "downsampling groups by time and dimensions only, never by numeric buckets",
                                 "bucket the value at ingest (an ingest pipeline writing a keyword field) and make that field a "
                                 "dimension, or keep the raw value as a dimension (one series per distinct value)"))

    dims = list((groups.get("terms") or {}).get("fields") or [])
    if not dims:
        blockers.append(_blocker("DimensionSubset", "the job has no terms group: it sums every series into one bucket per "
                                 "interval, while downsampling keeps one document per time series (all dimensions) and interval",
                                 "accept per-series results and aggregate across series at query time"))
    elif facts and facts.dimensions is not None:
        extra = sorted(set(facts.dimensions) - set(dims))
        if extra:
            blockers.append(_blocker("DimensionSubset", f"the job groups by {', '.join(dims)} only, but downsampling groups by "
                                     f"every dimension of the source, also {', '.join(extra)}",
                                     "aggregate the extra dimensions away at query time, or drop them from the mapping"))

    field_metrics = {m["field"]: sorted(m["metrics"]) for m in config.get("metrics") or []}
    if len({tuple(v) for v in field_metrics.values()}) > 1:
        choice = "; ".join(f"{f}: {', '.join(v)}" for f, v in field_metrics.items())
        blockers.append(_blocker("PerFieldMetrics", f"metrics are chosen per field ({choice}): downsampling keeps min, max, "
                                 "sum and value_count for every gauge metric (avg from sum/value_count) and the last value "
                                 "for counters; it cannot keep one field's choice",
                                 "accept the superset (more storage per metric), or drop fields you do not need from the mapping"))
    metrics = []
    for fld, kinds in field_metrics.items():
        kind, why = _metric_kind(fld, facts)
        kept = ["last_value"] if kind == "counter" else list(ALL_METRICS)
        lost = sorted(set(kinds) - {"avg"} - set(kept)) if kind == "counter" else []
        metrics.append({"field": fld, "type": kind, "why": why, "rollupMetrics": kinds, "downsampledMetrics": kept,
                        **({"lost": lost} if lost else {})})
        if lost:
            changes.append({"setting": f"metrics.{fld}", "value": kinds,
                            "instead": f"as a counter only the last value is kept ({', '.join(lost)} are lost): query it with rate()"})

    if facts is not None:
        if facts.data_stream is False or facts.time_series is False:
            what = "is not a data stream" if facts.data_stream is False else "is a data stream but not index.mode time_series"
            blockers.append(_blocker("NotTimeSeriesDataStream", f"the source {config.get('index_pattern')} {what}: "
                                     "downsampling works on time series data streams only",
                                     "send new data to a time series data stream (the index template in this plan's requests; a data "
                                     "stream cannot take the name of an existing index, so adjust index_patterns), let the old "
                                     "indices age out, or reindex them into it"))
        if facts.downsample_interval and fixed:
            base, iv = interval_ms(facts.downsample_interval), interval_ms(fixed)
            if base and iv and (iv % base or iv <= base):
                blockers.append(_blocker("IntervalNotMultiple", f"fixed_interval {fixed} is not a larger multiple of the "
                                         f"source's own downsampling interval {facts.downsample_interval}",
                                         "pick a multiple of it, at least twice as long"))

    ts_field = dh.get("field")
    if ts_field and ts_field != "@timestamp":
        changes.append({"setting": "date_histogram.field", "value": ts_field,
                        "instead": "a data stream's time field is @timestamp: write it at ingest (e.g. a set processor copying "
                                   f"{ts_field})"})
    tz = dh.get("time_zone") or "UTC"
    if tz not in ("UTC", "Z", "+00:00"):
        changes.append({"setting": "time_zone", "value": tz, "instead": "downsampling buckets are always UTC; "
                        "apply the time zone at query time (date_histogram time_zone on the downsampled data)"})
    after = _after(fixed, dh.get("delay"))
    for key, value, instead in (
        ("delay", dh.get("delay"), f"no delay: an index is downsampled once it has rolled over and is {after} old; late "
                                   "documents must arrive within the data stream's index.look_back_time (default 2h)"),
        ("cron", config.get("cron"), "no schedule: ILM (or the data stream lifecycle) downsamples each backing index once, "
                                     f"{after} after rollover"),
        ("page_size", config.get("page_size"), "no counterpart: a downsample task processes a whole backing index, shard by shard"),
    ):
        if value is not None:
            changes.append({"setting": key, "value": value, "instead": instead})

    downsampleable = not blockers
    plan = {
        "jobId": job_id,
        "indexPattern": config.get("index_pattern"),
        "interval": dh.get("fixed_interval") or dh.get("calendar_interval"),
        "fixedInterval": fixed,
        "after": after,
        "dimensions": dims,
        "metrics": metrics,
        "downsampleable": downsampleable,
        "verdict": "downsampleable" if downsampleable else "blocked",
        "blockers": blockers,
        "changes": changes,
        "sourceChecked": facts is not None and facts.note is None,
    }
    if facts is not None and facts.note:
        plan["sourceNote"] = facts.note
    if fixed and interval_ms(fixed) is not None:
        plan["requests"] = _requests(job_id, config, fixed, dims, metrics, facts, after)
    plan["summary"] = summary(plan)
    return plan


def summary(plan: Mapping[str, Any]) -> str:
    fixed = plan.get("fixedInterval")
    if plan["downsampleable"]:
        tail = "" if plan.get("sourceChecked") else " (source not checked: it must be a time series data stream)"
        return f"downsampleable: downsample action fixed_interval {fixed} after {plan['after']}{tail}"
    reasons = ", ".join(dict.fromkeys(b["reason"] for b in plan["blockers"]))
    return f"blocked by {reasons}" + (f"; nearest downsampling: fixed_interval {fixed}" if fixed else "")


def plan_jobs(configs: Iterable[Mapping[str, Any]], facts: Mapping[str, SourceFacts] | None = None) -> list[dict[str, Any]]:
    """Plans for several jobs; jobs over one source become downsampling rounds of one policy, so each
    interval must be a multiple of the shortest one on that source. ``facts`` is keyed by index_pattern."""
    configs = list(configs)
    plans = [plan_job(c, (facts or {}).get(str(c.get("index_pattern")))) for c in configs]
    by_source: dict[str, list[dict[str, Any]]] = {}
    for p in plans:
        if interval_ms(p.get("fixedInterval")):
            by_source.setdefault(str(p["indexPattern"]), []).append(p)
    for group in by_source.values():
        ms = {id(p): interval_ms(p["fixedInterval"]) or 0 for p in group}  # all set: only jobs with an interval are grouped
        shortest = min(group, key=lambda p: ms[id(p)])
        base = ms[id(shortest)]
        for p in group:
            iv = ms[id(p)]
            if base and iv % base:
                p["blockers"].append(_blocker(
                    "IntervalNotMultiple", f"fixed_interval {p['fixedInterval']} is not a multiple of {shortest['fixedInterval']}, "
                    f"the shortest interval of another job ({shortest['jobId']}) on the same source: downsampling rounds of "
                    "one data stream must each be a multiple of the previous one",
                    f"use a multiple of {shortest['fixedInterval']}"))
                p["downsampleable"], p["verdict"] = False, "blocked"
                p["summary"] = summary(p)
    return plans


def status_migration(config: Mapping[str, Any] | None) -> dict[str, Any] | None:
    """``status.migration`` of a RollupJob: from the job's config alone, no Elasticsearch call.

    ``config`` is the Elasticsearch-shaped config (the observed job's, else ``config_to_es`` of
    ``spec.config``); None gives None (nothing known yet: leave the field unset).
    """
    if not config:
        return None
    plan = plan_job(config)
    return {
        "downsampleable": plan["downsampleable"],
        "blockers": [{"reason": b["reason"], "message": b["message"][:1024]} for b in plan["blockers"]],
        "summary": plan["summary"][:1024],
    }
