"""``_search`` with ``size: 0`` and aggregations: the questions a migration's verification asks.

Queries: ``match_all``, ``range`` (``gt``/``gte``/``lt``/``lte``, epoch milliseconds or ISO 8601),
``term``, ``terms``, ``bool`` (``filter``/``must``/``must_not``). Aggregations: ``date_histogram``
(``fixed_interval``; ``min_doc_count`` 0 by default fills the empty buckets between the first and the
last, as Elasticsearch does), ``terms`` (``size`` default 10, ordered by ``doc_count`` then key;
``sum_other_doc_count``), and the metrics ``min``, ``max``, ``sum``, ``avg``, ``value_count``.

On an ``aggregate_metric_double`` field (a downsampled gauge) each metric reads its own sub-metric
(``min`` the min, ``sum`` the sum, ``value_count`` the value_count, ``avg`` sum / value_count), and a
document's ``_doc_count`` field counts for that many documents in ``doc_count`` (the documented
behaviour of the field type and of ``_doc_count``). Hits are not returned (``size`` > 0 is refused).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Callable, Iterable

from .errors import ESError, illegal_argument, parse_error
from .indices import IndexStore, index_not_found
from .tsdocs import field_value, iso, parse_ms

if TYPE_CHECKING:  # pragma: no cover
    from .server import Ctx, RestServer

Doc = dict[str, Any]
METRICS = ("min", "max", "sum", "avg", "value_count")
_UNIT_MS = {"ms": 1, "s": 1000, "m": 60_000, "h": 3_600_000, "d": 86_400_000}


def interval_ms(text: str) -> int:
    import re

    m = re.fullmatch(r"(\d+)(ms|s|m|h|d)", str(text))
    if not m or int(m.group(1)) == 0:
        raise illegal_argument(f"failed to parse setting [date_histogram.fixedInterval] with value [{text}] as a time value: "
                               "unit is missing or unrecognized")
    return int(m.group(1)) * _UNIT_MS[m.group(2)]


def matches(query: dict[str, Any] | None, doc: Doc, time_fields: Iterable[str] = ()) -> bool:
    if not query or "match_all" in query:
        return True
    (kind, body), = query.items()
    if kind == "bool":
        def each(key: str) -> list[dict[str, Any]]:
            v = body.get(key) or []
            return [v] if isinstance(v, dict) else list(v)
        return (all(matches(q, doc, time_fields) for q in each("filter") + each("must"))
                and not any(matches(q, doc, time_fields) for q in each("must_not")))
    if kind == "range":
        (fld, cond), = body.items()
        v = field_value(doc, fld)
        if v is None:
            return False
        date = fld in time_fields or isinstance(v, str)
        val = parse_ms(v) if date else float(v)
        conv: Callable[[Any], float] = (lambda x: parse_ms(x)) if date else float
        ops = {"gt": lambda a, b: a > b, "gte": lambda a, b: a >= b, "lt": lambda a, b: a < b, "lte": lambda a, b: a <= b}
        return all(ops[op](val, conv(bound)) for op, bound in cond.items() if op in ops and bound is not None)
    if kind == "term":
        (fld, cond), = body.items()
        want = cond.get("value") if isinstance(cond, dict) else cond
        return field_value(doc, fld) == want
    if kind == "terms":
        (fld, values), = body.items()
        return field_value(doc, fld) in values
    raise parse_error(f"unknown query [{kind}]")


def doc_count(doc: Doc) -> int:
    return int(doc.get("_doc_count", 1))


def _parts(value: Any) -> tuple[float, float, float, float] | None:
    """(min, max, sum, value_count) of one field of one document: a number, a list, or an aggregate_metric_double."""
    if value is None:
        return None
    if isinstance(value, dict):
        return float(value["min"]), float(value["max"]), float(value["sum"]), float(value["value_count"])
    vals = [float(parse_ms(v)) if isinstance(v, str) else float(v) for v in (value if isinstance(value, list) else [value])]
    return (min(vals), max(vals), sum(vals), float(len(vals))) if vals else None


def metric(kind: str, fld: str, docs: list[Doc]) -> dict[str, Any]:
    parts = [p for p in (_parts(field_value(d, fld)) for d in docs) if p is not None]
    count = sum(p[3] for p in parts)
    total = sum(p[2] for p in parts)
    if kind == "value_count":
        return {"value": int(count)}
    if kind == "sum":
        return {"value": total}
    if kind == "avg":
        return {"value": total / count if count else None}
    if not parts:
        return {"value": None}
    value = min(p[0] for p in parts) if kind == "min" else max(p[1] for p in parts)
    if any(isinstance(field_value(d, fld), str) for d in docs[:1]):  # a date: also as a string
        return {"value": value, "value_as_string": iso(int(value))}
    return {"value": value}


def aggregate(aggs: dict[str, Any], docs: list[Doc]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for name, spec in (aggs or {}).items():
        sub = spec.get("aggs") or spec.get("aggregations") or {}
        kinds = [k for k in spec if k not in ("aggs", "aggregations", "meta")]
        if len(kinds) != 1:
            raise parse_error(f"Expected [START_OBJECT] under [{kinds[1] if kinds else 'aggs'}], but got a [FIELD_NAME] in [{name}]")
        kind = kinds[0]
        body = spec[kind]
        if kind in METRICS:
            out[name] = metric(kind, body["field"], docs)
        elif kind == "date_histogram":
            out[name] = {"buckets": _date_histogram(body, sub, docs)}
        elif kind == "terms":
            out[name] = _terms(body, sub, docs)
        else:
            raise ESError("named_object_not_found_exception", f"[1:1] unknown field [{kind}]", 400)
    return out


def _date_histogram(body: dict[str, Any], sub: dict[str, Any], docs: list[Doc]) -> list[dict[str, Any]]:
    if "calendar_interval" in body:
        raise illegal_argument("the emulator's date_histogram takes fixed_interval only")
    if "fixed_interval" not in body:
        raise illegal_argument("Invalid interval specified, must be non-null and non-empty")
    iv = interval_ms(body["fixed_interval"])
    groups: dict[int, list[Doc]] = {}
    for d in docs:
        v = field_value(d, body["field"])
        if v is not None:
            k = parse_ms(v) // iv * iv
            groups.setdefault(k, []).append(d)
    min_count = int(body.get("min_doc_count", 0))
    keys = sorted(groups)
    if keys and min_count == 0:
        keys = list(range(keys[0], keys[-1] + iv, iv))
    out = []
    for k in keys:
        g = groups.get(k, [])
        n = sum(doc_count(d) for d in g)
        if n >= min_count:
            out.append({"key_as_string": iso(k), "key": k, "doc_count": n, **aggregate(sub, g)})
    return out


def _terms(body: dict[str, Any], sub: dict[str, Any], docs: list[Doc]) -> dict[str, Any]:
    groups: dict[Any, list[Doc]] = {}
    for d in docs:
        v = field_value(d, body["field"])
        for x in (v if isinstance(v, list) else [v]):
            if x is not None:
                groups.setdefault(x, []).append(d)
    ranked = sorted(groups.items(), key=lambda kv: (-sum(doc_count(d) for d in kv[1]), str(kv[0])))
    size = int(body.get("size", 10))
    kept, rest = ranked[:size], ranked[size:]
    return {"doc_count_error_upper_bound": 0, "sum_other_doc_count": sum(doc_count(d) for _, g in rest for d in g),
            "buckets": [{"key": k, "doc_count": sum(doc_count(d) for d in g), **aggregate(sub, g)} for k, g in kept]}


def search_docs(store: IndexStore, expression: str) -> list[Doc]:
    names: list[str] = []
    for part in expression.split(","):
        found = store.resolve(part)
        if not found and "*" not in part and part not in store.indices and part not in store.data_streams:
            raise index_not_found(part)
        names += [n for n in found if n not in names]
    return [d for n in names for d in store.documents.get(n, [])]


def answer(aggs: dict[str, Any], docs: list[Doc], total: int) -> dict[str, Any]:
    return {"took": 1, "timed_out": False, "_shards": {"total": 1, "successful": 1, "skipped": 0, "failed": 0},
            "hits": {"total": {"value": total, "relation": "eq"}, "max_score": None, "hits": []},
            **({"aggregations": aggregate(aggs, docs)} if aggs else {})}


def read_body(srv: "RestServer", ctx: "Ctx") -> dict[str, Any]:
    node = srv.body_json(ctx)
    body = node.to_python() if node is not None else {}
    unknown = [k for k in body if k not in ("query", "size", "aggs", "aggregations", "track_total_hits", "from", "timeout")]
    if unknown:
        raise parse_error(f"[1:2] unknown field [{unknown[0]}]")
    return body


async def h_search(srv: "RestServer", ctx: "Ctx") -> Any:
    srv.check_params(ctx, frozenset({"size", "ignore_unavailable", "allow_no_indices", "expand_wildcards",
                                     "track_total_hits", "typed_keys", "rest_total_hits_as_int", "timeout"}))
    srv.emu.security.authorize(ctx.principal, "indices:data/read/search")
    body = read_body(srv, ctx)
    if int(body.get("size", ctx.query.get("size", 10)) or 0) != 0:
        raise illegal_argument("the emulator's _search returns aggregations only: use size 0")
    docs = [d for d in search_docs(srv.emu.cluster.indices, ctx.path_params.get("index", "_all"))
            if matches(body.get("query"), d, ("@timestamp",))]
    return answer(body.get("aggs") or body.get("aggregations") or {}, docs, len(docs))


def routes(r) -> list:
    return [r("/{index}/_search", GET=(h_search,), POST=(h_search,))]
