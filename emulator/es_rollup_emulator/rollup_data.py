"""Rollup documents and ``_rollup_search``.

:func:`materialize` is what a rollup job's run writes: for every complete ``date_histogram`` bucket
after the job's checkpoint (a bucket is complete once its end is older than now minus the job's
``delay``), one document per bucket and terms combination, in the rollup index format
(``<field>.date_histogram.timestamp``, ``.interval``, ``.time_zone``, ``._count``,
``<term>.terms.value``, ``<metric field>.<metric>.value``, ``<field>.avg._count``,
``_rollup.id``, ``_rollup.version: 2``). Buckets before the checkpoint are never revisited: a document
indexed late into an interval already rolled up is not in the rollup index (as with a real job).
A started job's run (state.py's trigger) materializes; so does ``ElasticsearchEmulator.rollup_now``.

``GET|POST <indices>/_rollup_search`` (``size`` must be 0) answers ``date_histogram``, ``terms`` and
the metrics ``min``, ``max``, ``sum``, ``avg``, ``value_count`` from those documents, after checking
each against the jobs' configs in the rollup index's ``_meta._rollup``: the interval must be a
multiple of the job's, the terms field and the metric must be configured, as the rollup search
documentation states; otherwise 400 with Elasticsearch's messages.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from .errors import illegal_argument
from .indices import IndexStore, index_not_found
from .search import METRICS, answer, interval_ms, matches, read_body
from .tsdocs import field_value, now_ms, parse_ms

if TYPE_CHECKING:  # pragma: no cover
    from .server import Ctx, RestServer
    from .state import Job


def _parts(value: Any) -> tuple[float, float, float, float] | None:
    if value is None:
        return None
    if isinstance(value, dict):  # a source already downsampled
        return float(value["min"]), float(value["max"]), float(value["sum"]), float(value["value_count"])
    return float(value), float(value), float(value), 1.0


def materialize(store: IndexStore, job: "Job", at_ms: int | None = None) -> int:
    """Roll up the complete buckets since the job's checkpoint; returns how many documents were written."""
    cfg = job.config
    if cfg.groups is None:
        return 0
    dh = cfg.groups.date_histogram
    if dh.interval_type != "fixed_interval":
        return 0  # calendar buckets: not emulated (the migration stops such a job at Planned)
    iv = interval_ms(dh.interval)
    delay = interval_ms(dh.delay) if dh.delay else 0
    limit = ((at_ms if at_ms is not None else now_ms()) - delay) // iv * iv
    start = store.rollup_checkpoints.get(cfg.id, -(2 ** 62))
    terms = list(cfg.groups.terms.fields) if cfg.groups.terms else []
    groups: dict[tuple[Any, ...], list[dict[str, Any]]] = {}
    for name in store.resolve(cfg.index_pattern):
        if name == cfg.rollup_index:
            continue
        for d in store.documents.get(name, []):
            v = field_value(d, dh.field)
            if v is None:
                continue
            b = parse_ms(v) // iv * iv
            if start <= b and b + iv <= limit:
                groups.setdefault((b, *(field_value(d, t) for t in terms)), []).append(d)
    out = store.documents.setdefault(cfg.rollup_index, [])
    for key, docs in sorted(groups.items(), key=lambda kv: [str(x) for x in kv[0]]):
        n = sum(int(d.get("_doc_count", 1)) for d in docs)
        doc: dict[str, Any] = {f"{dh.field}.date_histogram.timestamp": key[0], f"{dh.field}.date_histogram.interval": dh.interval,
                               f"{dh.field}.date_histogram.time_zone": dh.time_zone, f"{dh.field}.date_histogram._count": n,
                               "_rollup.id": cfg.id, "_rollup.version": 2}
        for t, v in zip(terms, key[1:]):
            doc[f"{t}.terms.value"], doc[f"{t}.terms._count"] = v, n
        for m in cfg.metrics:
            parts = [p for p in (_parts(field_value(d, m.field)) for d in docs) if p is not None]
            if not parts:
                continue
            vals = {"min": min(p[0] for p in parts), "max": max(p[1] for p in parts), "sum": sum(p[2] for p in parts),
                    "value_count": sum(p[3] for p in parts)}
            for kind in m.metrics:
                if kind == "avg":
                    doc[f"{m.field}.avg.value"], doc[f"{m.field}.avg._count"] = vals["sum"], vals["value_count"]
                else:
                    doc[f"{m.field}.{kind}.value"] = vals[kind]
        out.append(doc)
    if limit > start:
        store.rollup_checkpoints[cfg.id] = limit
    return len(groups)


def _caps(store: IndexStore, names: list[str]) -> list[dict[str, Any]]:
    jobs: list[dict[str, Any]] = []
    for n in names:
        meta = store.indices[n].rollup_meta
        if meta is None:
            raise illegal_argument("Must specify at least one rollup index in _rollup_search API")
        jobs += [j for k, j in meta.items() if isinstance(j, dict) and k != "rollup-version"]
    return jobs


def _check(aggs: dict[str, Any], jobs: list[dict[str, Any]]) -> None:
    for name, spec in (aggs or {}).items():
        kind = next(k for k in spec if k not in ("aggs", "aggregations", "meta"))
        body = spec[kind]
        if kind == "date_histogram":
            want = interval_ms(body.get("fixed_interval", ""))
            ok = [j for j in jobs if (j["groups"]["date_histogram"].get("field") == body["field"]
                  and "fixed_interval" in j["groups"]["date_histogram"]
                  and want % interval_ms(j["groups"]["date_histogram"]["fixed_interval"]) == 0)]
            if not ok:
                raise illegal_argument(f"There is not a rollup job that has a [date_histogram] agg on field [{body['field']}] "
                                       "which also satisfies all requirements of query.")
        elif kind == "terms":
            if not any(body["field"] in ((j["groups"].get("terms") or {}).get("fields") or []) for j in jobs):
                raise illegal_argument(f"There is not a rollup job that has a [terms] agg with name [{name}] which also "
                                       "satisfies all requirements of query.")
        elif kind in METRICS:
            if not any(m["field"] == body["field"] and kind in m["metrics"] for j in jobs for m in j.get("metrics") or []):
                raise illegal_argument(f"There is not a [{kind}] agg with name [{body['field']}] configured in selected "
                                       "rollup indices, cannot translate aggregation.")
        else:
            raise illegal_argument(f"Unable to translate aggregation tree into Rollup.  Aggregation [{name}] is of type "
                                   f"[{type(body).__name__}] which is currently unsupported.")
        _check(spec.get("aggs") or spec.get("aggregations") or {}, jobs)


def _as_docs(raw: list[dict[str, Any]], jobs: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Rollup documents seen as pre-aggregated documents: the date, the terms, each metric as min/max/sum/count."""
    out = []
    for r in raw:
        job = next((j for j in jobs if j.get("id") == r.get("_rollup.id")), None)
        if job is None:
            continue
        ts = job["groups"]["date_histogram"]["field"]
        d: dict[str, Any] = {ts: r[f"{ts}.date_histogram.timestamp"], "_doc_count": r[f"{ts}.date_histogram._count"]}
        for t in (job["groups"].get("terms") or {}).get("fields") or []:
            d[t] = r.get(f"{t}.terms.value")
        for m in job.get("metrics") or []:
            f = m["field"]
            total = r.get(f"{f}.sum.value", r.get(f"{f}.avg.value"))
            count = r.get(f"{f}.value_count.value", r.get(f"{f}.avg._count"))
            if f"{f}.min.value" in r or total is not None:
                d[f] = {"min": r.get(f"{f}.min.value", 0.0), "max": r.get(f"{f}.max.value", 0.0),
                        "sum": total or 0.0, "value_count": count or 0}
        out.append(d)
    return out


async def h_rollup_search(srv: "RestServer", ctx: "Ctx") -> Any:
    srv.check_params(ctx, frozenset({"rest_total_hits_as_int", "typed_keys"}))
    srv.emu.security.authorize(ctx.principal, "indices:data/read/xpack/rollup/search")
    store = srv.emu.cluster.indices
    body = read_body(srv, ctx)
    if int(body.get("size", 0) or 0) != 0:
        raise illegal_argument("Rollup does not support returning search hits, please try again with [size: 0].")
    names: list[str] = []
    for part in ctx.path_params["index"].split(","):
        found = store.resolve(part)
        if not found and "*" not in part:
            raise index_not_found(part)
        names += [n for n in found if n not in names]
    if ctx.path_params["index"] in ("_all", "*"):
        raise illegal_argument("Searching all indices (_all) is not permitted in the rollup search API")
    rollup = [n for n in names if store.indices[n].rollup_meta is not None]
    if not rollup:
        raise illegal_argument("Must specify at least one rollup index in _rollup_search API")
    if len(rollup) > 1:
        raise illegal_argument("RollupSearch currently only supports searching one rollup index at a time. "
                               f"Found the following rollup indices: [{', '.join(rollup)}]")
    jobs = _caps(store, rollup)
    aggs = body.get("aggs") or body.get("aggregations") or {}
    _check(aggs, jobs)
    docs = [d for d in _as_docs([r for n in rollup for r in store.documents.get(n, [])], jobs)
            if matches(body.get("query"), d, ("@timestamp",))]
    out = answer(aggs, docs, 0)
    out["terminated_early"] = False
    out["hits"]["max_score"] = 0.0
    return out


def routes(r) -> list:
    return [r("/{index}/_rollup_search", GET=(h_rollup_search, frozenset(), True), POST=(h_rollup_search, frozenset(), True))]
