"""The rollup job configuration: strict parsing, construction rules, and field validation.

Mirrors ``RollupJobConfig``, ``GroupConfig``, ``DateHistogramGroupConfig``,
``HistogramGroupConfig``, ``TermsGroupConfig`` and ``MetricConfig`` of Elasticsearch's x-pack:
parser names (``xpack/rollup/jobconfig``, ``groups``, ``date_histogram``, ``histogram``,
``terms``, ``metrics``), constructor checks (with their exact messages, double spaces included)
and ``validateMappings`` against field capabilities of the indices matching ``index_pattern``.

:func:`parse_job_config` raises :class:`~.errors.ESError`; :func:`validate_mappings` returns the
list of validation messages for ``Validation Failed: 1: ...;``.
"""

from __future__ import annotations

import fnmatch
import json
from dataclasses import dataclass
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from .errors import ESError, PLAIN, illegal_argument
from .params import TimeValue, parse_time
from .xcontent import (
    INT, LONG, OBJECT, OBJECT_ARRAY, STRING, STRING_ARRAY, STRING_OR_NULL, Field, Node,
    ObjectParser, as_int, as_string, as_string_list, object_list, parse_json,
)

SUPPORTED_METRICS = ["max", "min", "sum", "avg", "value_count"]
SUPPORTED_DATE_METRICS = ["max", "min", "value_count"]
DATE_TYPES = ["date", "date_nanos"]
NUMERIC_TYPES = {"long", "integer", "short", "byte", "double", "float", "half_float", "scaled_float", "unsigned_long"}
CALENDAR_UNITS = {"year", "1y", "quarter", "1q", "month", "1M", "week", "1w", "day", "1d",
                  "hour", "1h", "minute", "1m", "second", "1s"}


@dataclass
class DateHistogram:
    field: str
    interval: str
    interval_type: str  # calendar_interval | fixed_interval | interval
    delay: str | None = None
    time_zone: str = "UTC"

    def to_dict(self) -> dict[str, Any]:
        d: dict[str, Any] = {self.interval_type: self.interval, "field": self.field}
        if self.delay is not None:
            d["delay"] = self.delay
        d["time_zone"] = self.time_zone
        return d

    @property
    def interval_ms(self) -> int:
        if self.interval_type == "calendar_interval" or self.interval in CALENDAR_UNITS:
            unit = self.interval.lstrip("1")
            return {"y": 31536000, "year": 31536000, "q": 7776000, "quarter": 7776000, "M": 2592000,
                    "month": 2592000, "w": 604800, "week": 604800, "d": 86400, "day": 86400,
                    "h": 3600, "hour": 3600, "m": 60, "minute": 60, "s": 1, "second": 1}.get(unit, 3600) * 1000
        try:
            return max(1, int(parse_time(self.interval, "interval").seconds * 1000))
        except ESError:
            return 3600_000


@dataclass
class Histogram:
    interval: int
    fields: list[str]

    def to_dict(self) -> dict[str, Any]:
        return {"interval": self.interval, "fields": list(self.fields)}


@dataclass
class Terms:
    fields: list[str]

    def to_dict(self) -> dict[str, Any]:
        return {"fields": list(self.fields)}


@dataclass
class Groups:
    date_histogram: DateHistogram
    histogram: Histogram | None = None
    terms: Terms | None = None

    def to_dict(self) -> dict[str, Any]:
        d: dict[str, Any] = {"date_histogram": self.date_histogram.to_dict()}
        if self.histogram is not None:
            d["histogram"] = self.histogram.to_dict()
        if self.terms is not None:
            d["terms"] = self.terms.to_dict()
        return d


@dataclass
class Metric:
    field: str
    metrics: list[str]

    def to_dict(self) -> dict[str, Any]:
        return {"field": self.field, "metrics": list(self.metrics)}


@dataclass
class RollupJobConfig:
    id: str
    index_pattern: str
    rollup_index: str
    cron: str
    page_size: int
    groups: Groups | None
    metrics: list[Metric]
    timeout: TimeValue

    def to_dict(self) -> dict[str, Any]:
        d: dict[str, Any] = {
            "id": self.id, "index_pattern": self.index_pattern, "rollup_index": self.rollup_index,
            "cron": self.cron,
        }
        if self.groups is not None:
            d["groups"] = self.groups.to_dict()
        d["metrics"] = [m.to_dict() for m in self.metrics]
        d["timeout"] = self.timeout.rep
        d["page_size"] = self.page_size
        return d

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), separators=(",", ":"))

    def all_fields(self) -> list[str]:
        out: list[str] = []
        if self.groups:
            out.append(self.groups.date_histogram.field)
            if self.groups.histogram:
                out += self.groups.histogram.fields
            if self.groups.terms:
                out += self.groups.terms.fields
        out += [m.field for m in self.metrics]
        return list(dict.fromkeys(out))


# -- builders (constructor checks) -------------------------------------------------------------
def _build_date_histogram(a: dict[str, Any], legacy_interval: bool) -> DateHistogram:
    field, calendar, fixed = a.get("field"), a.get("calendar_interval"), a.get("fixed_interval")
    old = a.get("interval") if legacy_interval else None
    delay, tz = a.get("delay"), a.get("time_zone")
    if old is not None:
        if calendar is not None or fixed is not None:
            raise illegal_argument("Cannot use [interval] with [fixed_interval] or [calendar_interval] configuration options.")
        kind, interval = ("calendar_interval" if old in CALENDAR_UNITS else "fixed_interval"), old
    elif calendar is not None and fixed is None:
        kind, interval = "calendar_interval", calendar
    elif fixed is not None and calendar is None:
        kind, interval = "fixed_interval", fixed
    elif calendar is not None and fixed is not None:
        raise illegal_argument("Cannot set both [fixed_interval] and [calendar_interval] at the same time")
    else:
        raise illegal_argument("An interval is required.  Use [fixed_interval] or [calendar_interval].")
    if not field:
        raise illegal_argument("Field must be a non-null, non-empty string")
    if kind == "calendar_interval" and interval not in CALENDAR_UNITS:
        raise illegal_argument(f"The supplied interval [{interval}] could not be parsed as a calendar interval.")
    if kind == "fixed_interval":
        parse_time(interval, "date_histogram.FixedInterval")
    time_zone = tz if tz else "UTC"
    if time_zone not in ("UTC", "Z") and not time_zone.startswith(("+", "-")):
        try:
            ZoneInfo(time_zone)
        except (ZoneInfoNotFoundError, ValueError):
            raise ESError("zone_rules_exception", f"Unknown time-zone ID: {time_zone}", 400, PLAIN) from None
    if delay is not None:
        parse_time(delay, "delay")
    return DateHistogram(field, interval, kind, delay, time_zone)


def _build_histogram(a: dict[str, Any]) -> Histogram:
    interval, fields = a.get("interval"), a.get("fields")
    if not fields:
        raise illegal_argument("Fields must have at least one value")
    if interval is None or interval <= 0:
        raise illegal_argument("Interval must be a positive long")
    return Histogram(interval, fields)


def _build_terms(a: dict[str, Any]) -> Terms:
    fields = a.get("fields")
    if not fields:
        raise illegal_argument("Fields must have at least one value")
    return Terms(fields)


def _build_groups(a: dict[str, Any]) -> Groups:
    if a.get("date_histogram") is None:
        raise illegal_argument("Date histogram must not be null")
    return Groups(a["date_histogram"], a.get("histogram"), a.get("terms"))


def _build_metric(a: dict[str, Any]) -> Metric:
    field, metrics = a.get("field"), a.get("metrics")
    if not field:
        raise illegal_argument("Field must be a non-null, non-empty string")
    if not metrics:
        raise illegal_argument("Metrics must be a non-null, non-empty array of strings")
    for m in metrics:
        if m not in SUPPORTED_METRICS:
            raise illegal_argument(
                f"Unsupported metric [{m}]. Supported metrics include: [{', '.join(SUPPORTED_METRICS)}]"
            )
    return Metric(field, metrics)


def _simple_match(pattern: str, value: str) -> bool:
    return fnmatch.fnmatchcase(value, pattern)


def _build_job(a: dict[str, Any], path_id: str | None) -> RollupJobConfig:
    job_id = a.get("id") or path_id
    index_pattern, rollup_index = a.get("index_pattern"), a.get("rollup_index")
    cron, page_size = a.get("cron"), a.get("page_size")
    groups, metrics = a.get("groups"), a.get("metrics")
    timeout = a.get("timeout") or TimeValue(20.0, "20s")
    if not job_id:
        raise illegal_argument("Id must be a non-null, non-empty string")
    if not index_pattern:
        raise illegal_argument("Index pattern must be a non-null, non-empty string")
    if index_pattern == "*":
        raise illegal_argument("Index pattern must not match all indices (as it would match it's own rollup index")
    if "*" in index_pattern and rollup_index and _simple_match(index_pattern, rollup_index):
        raise illegal_argument("Index pattern would match rollup index name which is not allowed")
    if index_pattern == rollup_index:
        raise illegal_argument("Rollup index may not be the same as the index pattern")
    if not rollup_index:
        raise illegal_argument("Rollup index must be a non-null, non-empty string")
    if not cron:
        raise illegal_argument("Cron schedule must be a non-null, non-empty string")
    if page_size is None or page_size <= 0:
        raise illegal_argument("Page size is mandatory and  must be a positive long")
    if groups is None and not metrics:
        raise illegal_argument("At least one grouping or metric must be configured")
    return RollupJobConfig(job_id, index_pattern, rollup_index, cron, page_size, groups, list(metrics or []), timeout)


def _parsers(path_id: str | None, legacy_interval: bool) -> ObjectParser:
    date_fields = [Field("field", STRING, as_string, True)]
    if legacy_interval:
        date_fields.append(Field("interval", STRING, as_string))
    date_fields += [
        Field("calendar_interval", STRING, as_string), Field("fixed_interval", STRING, as_string),
        Field("delay", STRING, as_string), Field("time_zone", STRING, as_string),
    ]
    date_histogram = ObjectParser("date_histogram", date_fields, lambda a: _build_date_histogram(a, legacy_interval))
    histogram = ObjectParser("histogram", [
        Field("interval", LONG, as_int, True), Field("fields", STRING_ARRAY, as_string_list, True)], _build_histogram)
    terms = ObjectParser("terms", [Field("fields", STRING_ARRAY, as_string_list, True)], _build_terms)
    groups = ObjectParser("groups", [
        Field("date_histogram", OBJECT, date_histogram.parse, True),
        Field("histogram", OBJECT, histogram.parse), Field("terms", OBJECT, terms.parse)], _build_groups)
    metric = ObjectParser("metrics", [
        Field("field", STRING, as_string, True), Field("metrics", STRING_ARRAY, as_string_list, True)], _build_metric)
    return ObjectParser("xpack/rollup/jobconfig", [
        Field("id", STRING, as_string),
        Field("index_pattern", STRING, as_string, True),
        Field("rollup_index", STRING, as_string, True),
        Field("groups", OBJECT, groups.parse),
        Field("metrics", OBJECT_ARRAY, object_list(metric)),
        Field("timeout", STRING_OR_NULL, lambda n: parse_time(n.value, "timeout")),
        Field("cron", STRING, as_string, True),
        Field("page_size", INT, as_int, True),
    ], lambda a: _build_job(a, path_id))


def parse_job_config(body: str | Node, path_id: str | None, legacy_interval: bool = False) -> RollupJobConfig:
    node = parse_json(body) if isinstance(body, str) else body
    return _parsers(path_id, legacy_interval).parse(node)


def config_from_dict(data: dict[str, Any], path_id: str | None = None) -> RollupJobConfig:
    return parse_job_config(json.dumps(data), path_id, legacy_interval=True)


# -- validateMappings --------------------------------------------------------------------------
FieldCaps = dict[str, dict[str, bool]]  # field -> {type: aggregatable}


def validate_mappings(config: RollupJobConfig, caps: FieldCaps) -> list[str]:
    errors: list[str] = []
    types_text = ",".join(DATE_TYPES)
    if config.groups:
        dh = config.groups.date_histogram
        fc = caps.get(dh.field)
        if fc:
            matched = False
            for t in DATE_TYPES:
                if t in fc and len(fc) == 1:
                    matched = True
                    if not fc[t]:
                        errors.append(f"The field [{dh.field}] must be aggregatable across all indices, but is not.")
            if not matched:
                errors.append(
                    f"The field referenced by a date_histo group must be one of type [{types_text}] across all "
                    f"indices in the index pattern.  Found: [{', '.join(fc)}] for field [{dh.field}]"
                )
        else:
            errors.append(
                f"Could not find one of [{types_text}] fields with name [{dh.field}] in any of the indices matching "
                "the index pattern."
            )
        if config.groups.histogram:
            for f in config.groups.histogram.fields:
                fc = caps.get(f)
                if fc:
                    for t, agg in fc.items():
                        if t in NUMERIC_TYPES:
                            if not agg:
                                errors.append(f"The field [{f}] must be aggregatable across all indices, but is not.")
                        else:
                            errors.append(
                                f"The field referenced by a histo group must be a [numeric] type, but found "
                                f"[{', '.join(fc)}] for field [{f}]"
                            )
                else:
                    errors.append(f"Could not find a [numeric] field with name [{f}] in any of the indices matching "
                                  "the index pattern.")
        if config.groups.terms:
            for f in config.groups.terms.fields:
                fc = caps.get(f)
                if fc:
                    for t, agg in fc.items():
                        if t in ("keyword", "text") or t in NUMERIC_TYPES - {"double", "float", "half_float", "scaled_float"}:
                            if not agg:
                                errors.append(f"The field [{f}] must be aggregatable across all indices, but is not.")
                        else:
                            errors.append(
                                f"The field referenced by a terms group must be a [numeric] or [keyword/text] type, "
                                f"but found [{', '.join(fc)}] for field [{f}]"
                            )
                else:
                    errors.append(f"Could not find a [numeric] or [keyword/text] field with name [{f}] in any of the "
                                  "indices matching the index pattern.")
    for m in config.metrics:
        fc = caps.get(m.field)
        if fc:
            for t, agg in fc.items():
                if not agg:
                    errors.append(f"The field [{m.field}] must be aggregatable across all indices, but is not.")
                if t in NUMERIC_TYPES:
                    pass
                elif t in DATE_TYPES:
                    unsupported = [x for x in m.metrics if x not in SUPPORTED_DATE_METRICS]
                    if unsupported:
                        errors.append(
                            f"Only the metrics [{', '.join(SUPPORTED_DATE_METRICS)}] are supported for [{t}] types, "
                            f"but unsupported metrics [{', '.join(unsupported)}] supplied for field [{m.field}]"
                        )
                else:
                    errors.append(
                        f"The field referenced by a metric group must be a [numeric] or [{types_text}] type, but found "
                        f"[{', '.join(fc)}] for field [{m.field}]"
                    )
        else:
            errors.append(
                f"Could not find a [numeric] or [{types_text}] field with name [{m.field}] in any of the indices "
                "matching the index pattern."
            )
    return errors
