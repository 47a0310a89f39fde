"""ILM policies with the ``downsample`` action, and a time control that runs them now.

``PUT|GET|DELETE _ilm/policy/<name>`` store, list and remove policies (``GET`` answers
``{name: {version, modified_date, policy, in_use_by}}``; deleting a policy still named by an index's
``index.lifecycle.name`` is refused, 400). The policy parser checks what the documentation states for
the downsample action: ``fixed_interval`` is required, and in the ``hot`` phase ``downsample`` needs a
``rollover`` action.

ILM never runs on its own here: :func:`run` (``POST /_emulator/ilm/_run?advance=<time>``, or
``ElasticsearchEmulator.run_ilm``) takes one ILM pass as if ``advance`` more time had passed: a data
stream whose write index is older than its policy's ``rollover.max_age`` is rolled over, then each
backing index that is no longer the write index, whose time series end time has passed and which has
been rolled over at least the phase's ``min_age`` ago is downsampled: the index
``downsample-<original index>-<random>`` replaces it in the data stream and the source is deleted.
A downsampled document holds, per time series (its dimensions) and per ``fixed_interval`` bucket,
``@timestamp`` (the bucket's start), the dimensions, each gauge as an ``aggregate_metric_double``
(min, max, sum, value_count), each counter and label as its last value, and ``_doc_count``.
"""

from __future__ import annotations

import time
import uuid
from typing import TYPE_CHECKING, Any

from .errors import ESError, illegal_argument
from .indices import IndexStore
from .search import interval_ms
from .tsdocs import field_value, iso, now_ms, parse_ms, rollover

if TYPE_CHECKING:  # pragma: no cover
    from .server import Ctx, RestServer

_PHASES = ("hot", "warm", "cold", "frozen", "delete")


def _duration_ms(text: str | None) -> int:
    return interval_ms(text) if text and text not in ("0", "0ms", "0s", "0m", "0h", "0d") else 0


def check_policy(name: str, policy: dict[str, Any]) -> None:
    phases = policy.get("phases") or {}
    for phase, body in phases.items():
        if phase not in _PHASES:
            raise illegal_argument(f"Lifecycle does not support phase [{phase}]")
        actions = (body or {}).get("actions") or {}
        ds = actions.get("downsample")
        if ds is not None:
            if phase not in ("hot", "warm", "cold"):
                raise illegal_argument(f"invalid action [downsample] defined in phase [{phase}]")
            if not isinstance(ds, dict) or "fixed_interval" not in ds:
                raise ESError("x_content_parse_exception", "[1:1] [downsample] failed to parse field [fixed_interval]",
                              400, caused_by=illegal_argument("Required [fixed_interval]"))
            interval_ms(ds["fixed_interval"])
            if phase == "hot" and "rollover" not in actions:
                raise illegal_argument("the [downsample] action(s) may not be used in the [hot] phase without an "
                                       "accompanying [rollover] action")


async def h_put_policy(srv: "RestServer", ctx: "Ctx") -> Any:
    srv.check_params(ctx, frozenset({"master_timeout", "timeout"}))
    srv.emu.security.authorize(ctx.principal, "cluster:admin/ilm/put")
    body = srv.body_json(ctx, required=True).to_python()
    if set(body) - {"policy"} or not isinstance(body.get("policy"), dict):
        raise ESError("x_content_parse_exception", "[1:2] [put_lifecycle_request] unknown field", 400)
    name = ctx.path_params["name"]
    check_policy(name, body["policy"])
    store = srv.emu.cluster.indices
    prev = store.ilm_policies.get(name)
    store.ilm_policies[name] = {"policy": body["policy"], "version": (prev["version"] + 1) if prev else 1,
                                "modified_date": iso(now_ms())}
    return {"acknowledged": True}


def _in_use(store: IndexStore, name: str) -> dict[str, Any]:
    indices = sorted(n for n, ix in store.indices.items() if ix.settings.get("index.lifecycle.name") == name)
    streams = sorted(n for n, ds in store.data_streams.items() if ds.ilm_policy == name)
    templates = sorted(n for n, t in store.composable.items()
                       if ((t.get("template") or {}).get("settings") or {}).get("index.lifecycle.name") == name)
    return {"indices": indices, "data_streams": streams, "composable_templates": templates}


async def h_get_policy(srv: "RestServer", ctx: "Ctx") -> Any:
    srv.check_params(ctx, frozenset({"master_timeout", "timeout"}))
    srv.emu.security.authorize(ctx.principal, "cluster:admin/ilm/get")
    store = srv.emu.cluster.indices
    name = ctx.path_params.get("name")
    names = sorted(store.ilm_policies) if not name else name.split(",")
    out = {}
    for n in names:
        if n not in store.ilm_policies:
            raise ESError("resource_not_found_exception", f"Lifecycle policy not found: [{n}]", 404)
        p = store.ilm_policies[n]
        out[n] = {"version": p["version"], "modified_date": p["modified_date"], "policy": p["policy"],
                  "in_use_by": _in_use(store, n)}
    return out


async def h_delete_policy(srv: "RestServer", ctx: "Ctx") -> Any:
    srv.check_params(ctx, frozenset({"master_timeout", "timeout"}))
    srv.emu.security.authorize(ctx.principal, "cluster:admin/ilm/delete")
    store = srv.emu.cluster.indices
    name = ctx.path_params["name"]
    if name not in store.ilm_policies:
        raise ESError("resource_not_found_exception", f"Lifecycle policy not found: [{name}]", 404)
    used = _in_use(store, name)["indices"]
    if used:
        raise illegal_argument(f"Cannot delete policy [{name}]. It is in use by one or more indices: [{', '.join(used)}]")
    del store.ilm_policies[name]
    return {"acknowledged": True}


def downsample(store: IndexStore, source: str, fixed_interval: str) -> str:
    """Downsample one time series index (the downsample action's effect); returns the new index name."""
    ix = store.indices[source]
    if ix.settings.get("index.mode") != "time_series":
        raise illegal_argument(f"Rollup requires setting [index.mode=time_series] for index [{source}]")
    iv = interval_ms(fixed_interval)
    props = (ix.mappings.get("properties") or {})
    dims = sorted(f for f, m in props.items() if isinstance(m, dict) and m.get("time_series_dimension"))
    gauges = [f for f, m in props.items() if isinstance(m, dict) and m.get("time_series_metric") == "gauge"]
    others = [f for f in props if f not in dims and f not in gauges and f != "@timestamp"]
    buckets: dict[tuple[Any, ...], list[dict[str, Any]]] = {}
    for d in store.documents.get(source, []):
        key = (*(field_value(d, f) for f in dims), parse_ms(d["@timestamp"]) // iv * iv)
        buckets.setdefault(key, []).append(d)
    out_docs = []
    for key, docs in sorted(buckets.items(), key=lambda kv: (kv[0][-1], [str(x) for x in kv[0][:-1]])):
        docs.sort(key=lambda d: parse_ms(d["@timestamp"]))
        doc: dict[str, Any] = {"@timestamp": iso(key[-1]), "_doc_count": sum(int(d.get("_doc_count", 1)) for d in docs)}
        doc.update({f: v for f, v in zip(dims, key[:-1]) if v is not None})
        for g in gauges:
            vals = [v for v in (field_value(d, g) for d in docs) if v is not None]
            if vals:
                nums = [float(v) for v in vals]
                doc[g] = {"min": min(nums), "max": max(nums), "sum": sum(nums), "value_count": len(nums)}
        for f in others:
            last = next((field_value(d, f) for d in reversed(docs) if field_value(d, f) is not None), None)
            if last is not None:
                doc[f] = last
        out_docs.append(doc)
    target = f"downsample-{source}-{uuid.uuid4().hex[:4]}"
    mappings = {**ix.mappings, "properties": {
        **props, **{g: {"type": "aggregate_metric_double", "metrics": ["min", "max", "sum", "value_count"],
                        "default_metric": "max", "time_series_metric": "gauge"} for g in gauges}}}
    settings = {k: v for k, v in ix.settings.items() if k.startswith(("index.mode", "index.time_series", "index.routing_path",
                                                                     "index.lifecycle", "index.hidden"))}
    settings.update({"index.downsample.source.name": source, "index.downsample.interval": fixed_interval,
                     "index.downsample.status": "success", "index.blocks.write": "true"})
    store.create(target, mappings, settings)
    store.documents[target] = out_docs
    for ds in store.data_streams.values():
        if source in ds.indices:
            ds.indices[ds.indices.index(source)] = target
    store.indices.pop(source, None)
    store.documents.pop(source, None)
    return target


def run(store: IndexStore, advance_ms: int = 0) -> list[dict[str, Any]]:
    """One ILM pass, ``advance_ms`` later than now; returns what it did, step by step."""
    now = now_ms() + advance_ms
    done: list[dict[str, Any]] = []
    for name, ds in sorted(store.data_streams.items()):
        if not ds.ilm_policy or ds.ilm_policy not in store.ilm_policies:
            continue
        phases = store.ilm_policies[ds.ilm_policy]["policy"].get("phases") or {}
        roll = ((phases.get("hot") or {}).get("actions") or {}).get("rollover")
        write = ds.indices[-1]
        if roll is not None and write in store.indices and store.documents.get(write):
            age = now - store.indices[write].creation_date
            if "max_age" not in roll or age >= _duration_ms(roll["max_age"]):
                res = rollover(store, name, at_ms=int(time.time() * 1000))
                done.append({"step": "rollover", "data_stream": name, "old_index": res["old_index"], "new_index": res["new_index"]})
        for phase in ("hot", "warm", "cold"):
            action = ((phases.get(phase) or {}).get("actions") or {}).get("downsample")
            if action is None:
                continue
            min_age = _duration_ms((phases.get(phase) or {}).get("min_age"))
            for idx in list(ds.indices[:-1]):
                ix = store.indices.get(idx)
                if ix is None or ix.settings.get("index.lifecycle.name") != ds.ilm_policy or "index.downsample.interval" in ix.settings:
                    continue
                end = ix.settings.get("index.time_series.end_time")
                rolled = store.rolled_over_ms.get(idx)
                if rolled is None or now - rolled < min_age or (end and parse_ms(end) > now):
                    continue
                new = downsample(store, idx, action["fixed_interval"])
                done.append({"step": "downsample", "data_stream": name, "index": idx, "downsample_index": new,
                             "fixed_interval": action["fixed_interval"]})
    return done


def routes(r) -> list:
    return [
        r("/_ilm/policy/{name}", PUT=(h_put_policy,), GET=(h_get_policy,), DELETE=(h_delete_policy,)),
        r("/_ilm/policy", GET=(h_get_policy,)),
    ]
