"""The verification's questions and the comparison of their answers. Pure, no I/O.

The same request goes to ``_rollup_search`` on the rollup index and to ``_search`` on the
downsampled backing indices: over the overlapping window, a ``date_histogram`` at the plan's
``fixed_interval`` (``min_doc_count: 1``), nested ``terms`` per dimension the job grouped by, and
per gauge metric the job's own metrics among min, max, sum, value_count, avg. Counters are not
compared: downsampling keeps only their last value (the plan says so).
"""

from __future__ import annotations

from typing import Any, Iterator, Mapping

COMPARED = ("min", "max", "sum", "value_count", "avg")
TERMS_SIZE = 1000


def questions(plan: Mapping[str, Any], job_config: Mapping[str, Any]) -> tuple[list[str], list[tuple[str, str]]]:
    """(dimensions, [(field, metric)]) that both sides can answer."""
    groups = job_config.get("groups") or {}
    terms = list((groups.get("terms") or {}).get("fields") or [])
    dims = [d for d in plan.get("dimensions") or terms if d in terms]
    metrics = [(m["field"], k) for m in plan.get("metrics") or [] if m.get("type") == "gauge"
               for k in m.get("rollupMetrics") or [] if k in COMPARED]
    return dims, metrics


def request(time_field: str, interval: str, dims: list[str], metrics: list[tuple[str, str]],
            window: tuple[int, int]) -> dict[str, Any]:
    leaf: dict[str, Any] = {f"{f}.{k}": {k: {"field": f}} for f, k in metrics}
    node = leaf
    for d in reversed(dims):
        node = {f"dim:{d}": {"terms": {"field": d, "size": TERMS_SIZE}, **({"aggs": node} if node else {})}}
    hist: dict[str, Any] = {"date_histogram": {"field": time_field, "fixed_interval": interval, "min_doc_count": 1}}
    if node:
        hist["aggs"] = node
    return {"size": 0, "query": {"range": {time_field: {"gte": window[0], "lt": window[1], "format": "epoch_millis"}}},
            "aggs": {"t": hist}}


def flatten(answer: Mapping[str, Any], dims: list[str]) -> dict[tuple[Any, ...], dict[str, float]]:
    """{(bucket key ms, dimension values...): {"doc_count": n, "<field>.<metric>": value}}."""
    out: dict[tuple[Any, ...], dict[str, float]] = {}

    def walk(bucket: Mapping[str, Any], key: tuple[Any, ...], level: int) -> Iterator[None]:
        if level < len(dims):
            for b in (bucket.get(f"dim:{dims[level]}") or {}).get("buckets") or []:
                yield from walk(b, (*key, b["key"]), level + 1)
            return
        vals = {"doc_count": float(bucket.get("doc_count") or 0)}
        for name, v in bucket.items():
            if isinstance(v, Mapping) and "value" in v and "." in name:
                vals[name] = v["value"]
        out[key] = vals
        yield None

    for b in ((answer.get("aggregations") or {}).get("t") or {}).get("buckets") or []:
        if b.get("doc_count"):
            list(walk(b, (int(b["key"]),), 0))
    return out


def compare(rollup: Mapping[tuple[Any, ...], Mapping[str, Any]], downsampled: Mapping[tuple[Any, ...], Mapping[str, Any]],
            tolerance: float, limit: int, iso: Any = str) -> dict[str, Any]:
    """Differences beyond ``tolerance`` (|rollup - downsampled| / max(|rollup|, 1)), at most ``limit`` listed."""
    diffs: list[dict[str, Any]] = []
    count = 0
    values = 0
    for key in sorted(set(rollup) | set(downsampled), key=lambda k: [str(x) for x in k]):
        a, b = rollup.get(key), downsampled.get(key)
        where = {"interval": iso(key[0]), **({"dimensions": [str(x) for x in key[1:]]} if len(key) > 1 else {})}
        if a is None or b is None:
            count += 1
            if len(diffs) < limit:
                diffs.append({**where, "value": "bucket", "rollup": None if a is None else a.get("doc_count"),
                              "downsampled": None if b is None else b.get("doc_count"),
                              "note": "only in the " + ("downsampled indices" if a is None else "rollup index")})
            continue
        for name in sorted(set(a) | set(b)):
            values += 1
            x, y = a.get(name), b.get(name)
            if x is None and y is None:
                continue
            if x is None or y is None or abs(float(x) - float(y)) / max(abs(float(x)), 1.0) > tolerance:
                count += 1
                if len(diffs) < limit:
                    diffs.append({**where, "value": name, "rollup": x, "downsampled": y})
    return {"buckets": len(set(rollup) | set(downsampled)), "values": values, "tolerance": tolerance,
            "differenceCount": count, "differences": diffs, "agree": count == 0}


def coverage(rollup_keys: list[int], rollup_iv: int, ds_min: int | None, ds_max: int | None, plan_iv: int) -> dict[str, Any]:
    """Time ranges [start, end) in ms of each side and their overlap, aligned to the plan's interval."""
    out: dict[str, Any] = {}
    if rollup_keys:
        out["rollup"] = (min(rollup_keys), max(rollup_keys) + rollup_iv)
    if ds_min is not None and ds_max is not None:
        out["downsampled"] = (ds_min, ds_max // plan_iv * plan_iv + plan_iv)
    if "rollup" in out and "downsampled" in out:
        lo = -(-max(out["rollup"][0], out["downsampled"][0]) // plan_iv) * plan_iv
        hi = min(out["rollup"][1], out["downsampled"][1]) // plan_iv * plan_iv
        if hi > lo:
            out["overlap"] = (lo, hi)
    return out
