"""A managed job's config: the CRD's camelCase ``spec.config`` <-> Elasticsearch's snake_case.

``config_to_es`` builds the body of ``PUT _rollup/job/<id>``; ``config_differences`` names the
fields where a wanted config and a job's actual config differ. Pure, no I/O.
"""

from __future__ import annotations

import re

from typing import Any, Mapping


class InvalidSpec(ValueError):
    """The resource is syntactically accepted by the API server but cannot be acted on."""


_METRICS = ("min", "max", "sum", "avg", "value_count")


def config_to_es(cfg: Mapping[str, Any]) -> dict[str, Any]:
    """Translate ``spec.config`` into the body of ``PUT _rollup/job/<id>`` (without ``id``)."""
    try:
        groups = cfg["groups"]
        dh = groups["dateHistogram"]
        es_dh: dict[str, Any] = {"field": dh["field"]}
        intervals = [k for k in ("calendarInterval", "fixedInterval") if dh.get(k)]
        if len(intervals) != 1:
            raise InvalidSpec("spec.config.groups.dateHistogram needs exactly one of calendarInterval or fixedInterval")
        es_dh["calendar_interval" if intervals[0] == "calendarInterval" else "fixed_interval"] = dh[intervals[0]]
        if dh.get("delay"):
            es_dh["delay"] = dh["delay"]
        es_dh["time_zone"] = dh.get("timeZone") or "UTC"
        es_groups: dict[str, Any] = {"date_histogram": es_dh}
        if groups.get("terms"):
            es_groups["terms"] = {"fields": list(groups["terms"]["fields"])}
        if groups.get("histogram"):
            h = groups["histogram"]
            es_groups["histogram"] = {"fields": list(h["fields"]), "interval": int(h["interval"])}
        metrics = []
        for m in cfg.get("metrics") or []:
            bad = [x for x in m["metrics"] if x not in _METRICS]
            if bad:
                raise InvalidSpec(f"spec.config.metrics: unsupported metric {bad[0]!r}; use one of {', '.join(_METRICS)}")
            metrics.append({"field": m["field"], "metrics": list(m["metrics"])})
        page_size = int(cfg.get("pageSize", 1000))
        if page_size <= 0:
            raise InvalidSpec("spec.config.pageSize must be greater than zero")
        return {
            "index_pattern": cfg["indexPattern"],
            "rollup_index": cfg["rollupIndex"],
            "cron": cfg["cron"],
            "page_size": page_size,
            "groups": es_groups,
            "metrics": metrics,
            "timeout": cfg.get("timeout") or "20s",
        }
    except KeyError as e:
        raise InvalidSpec(f"spec.config is missing required field {e.args[0]!r}") from None


def spec_field(name: str) -> str:
    """A field as config_differences names it (dotted, Elasticsearch spelling: ``groups.date_histogram.delay``)
    as the user writes it in ``spec.config`` (``groups.dateHistogram.delay``)."""
    return ".".join(re.sub(r"_([a-z])", lambda m: m.group(1).upper(), part) for part in name.split("."))


def config_differences(wanted: Mapping[str, Any], actual: Mapping[str, Any]) -> list[str]:
    """Names (dotted, Elasticsearch spelling) of the fields where two job configs differ.

    ``actual`` is the ``config`` of a job as ``GET _rollup/job`` returns it; server-side defaults
    (time_zone UTC, timeout 20s) are treated as equal to their explicit values.
    """
    diffs: list[str] = []

    def norm(d: Mapping[str, Any]) -> dict[str, Any]:
        out = {k: v for k, v in d.items() if k != "id"}
        out.setdefault("timeout", "20s")
        g = {k: dict(v) if isinstance(v, Mapping) else v for k, v in (out.get("groups") or {}).items()}
        if "date_histogram" in g:
            g["date_histogram"].setdefault("time_zone", "UTC")
            # Elasticsearch echoes "interval" alongside the specific interval in some versions.
            g["date_histogram"].pop("interval", None)
        out["groups"] = g
        out["metrics"] = sorted(
            ({"field": m["field"], "metrics": sorted(m["metrics"])} for m in out.get("metrics") or []),
            key=lambda m: m["field"],
        )
        return out

    a, b = norm(wanted), norm(actual)
    for key in sorted(set(a) | set(b)):
        if key == "groups":
            ga, gb = a.get("groups") or {}, b.get("groups") or {}
            for gk in sorted(set(ga) | set(gb)):
                va, vb = ga.get(gk), gb.get(gk)
                if isinstance(va, Mapping) and isinstance(vb, Mapping):
                    for fk in sorted(set(va) | set(vb)):
                        if va.get(fk) != vb.get(fk):
                            diffs.append(f"groups.{gk}.{fk}")
                elif va != vb:
                    diffs.append(f"groups.{gk}")
        elif a.get(key) != b.get(key):
            diffs.append(key)
    return diffs
