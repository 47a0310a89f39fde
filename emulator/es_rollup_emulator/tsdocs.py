"""Documents, time series routing, rollover and template simulation: what a migration to downsampling needs.

* Documents are kept per index (``IndexStore.documents``) as the sources given. Into a data stream
  they go to a backing index: for ``index.mode: time_series`` the one whose
  ``[index.time_series.start_time, end_time)`` holds the document's ``@timestamp`` (a timestamp outside
  every writable range is refused), else the write index (the last one). Seeded from Python
  (:func:`index_documents`) or by ``POST <target>/_doc``.
* ``POST <data stream>/_rollover``: a new backing index ``.ds-<name>-<yyyy.MM.dd>-<generation>``, built
  from the template matching the data stream *now* (so a new template with ``index.mode: time_series``
  and ``index.lifecycle.name`` takes effect on the next backing index); a time series one starts at the
  previous one's end time.
* ``POST _index_template/_simulate[/<name>]``: the settings, mappings and aliases a template (the
  body, else the stored one) would give, and the ``overlapping`` templates it supersedes.

Not emulated: ``index.look_ahead_time``/``look_back_time`` settings (two hours each, the defaults),
aliases, component templates.
"""

from __future__ import annotations

import fnmatch
import time
from typing import TYPE_CHECKING, Any

from .errors import ESError, illegal_argument
from .indices import IndexStore, deep_merge, index_not_found

if TYPE_CHECKING:  # pragma: no cover
    from .server import Ctx, RestServer

LOOK_MS = 2 * 3600 * 1000  # index.look_ahead_time / look_back_time defaults


def now_ms() -> int:
    return int(time.time() * 1000)


def iso(ms: int) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(ms // 1000)) + f".{ms % 1000:03d}Z"


def parse_ms(value: Any) -> int:
    """A date as a document or a query gives it: epoch milliseconds or an ISO 8601 string."""
    if isinstance(value, bool):
        raise ValueError(value)
    if isinstance(value, (int, float)):
        return int(value)
    text = str(value).strip()
    if text.lstrip("-").isdigit():
        return int(text)
    from datetime import datetime, timezone

    dt = datetime.fromisoformat(text.replace("Z", "+00:00"))
    if dt.tzinfo is None:
        dt = dt.replace(tzinfo=timezone.utc)
    return int(dt.timestamp() * 1000)


def field_value(doc: dict[str, Any], path: str) -> Any:
    """A field of a source, by its full name (``a.b``) or through objects."""
    if path in doc:
        return doc[path]
    node: Any = doc
    for part in path.split("."):
        if not isinstance(node, dict) or part not in node:
            return None
        node = node[part]
    return node


def _range(store: IndexStore, name: str) -> tuple[int, int] | None:
    s = store.indices[name].settings
    if s.get("index.mode") != "time_series" or "index.time_series.start_time" not in s:
        return None
    return parse_ms(s["index.time_series.start_time"]), parse_ms(s["index.time_series.end_time"])


def index_documents(store: IndexStore, target: str, docs: list[dict[str, Any]]) -> list[str]:
    """Index sources into an index or a data stream; returns the index each went to."""
    out = []
    for doc in docs:
        if target in store.data_streams:
            ds = store.data_streams[target]
            if "@timestamp" not in doc:
                raise illegal_argument("data stream timestamp field [@timestamp] is missing")
            ts = parse_ms(doc["@timestamp"])
            if ds.index_mode == "time_series":
                ranges = [(n, _range(store, n)) for n in ds.indices if n in store.indices]
                dest = next((n for n, r in ranges if r and r[0] <= ts < r[1]), None)
                if dest is None:
                    spans = ", ".join(f"[{iso(r[0])}, {iso(r[1])}]" for _, r in ranges if r)
                    raise illegal_argument(f"the document timestamp [{iso(ts)}] is outside of ranges of currently "
                                           f"writable indices [{spans}]")
            else:
                dest = ds.indices[-1]
        elif target in store.indices:
            dest = target
        else:
            store.create(target)
            dest = target
        store.documents.setdefault(dest, []).append(dict(doc))
        out.append(dest)
    return out


def rollover(store: IndexStore, name: str, at_ms: int | None = None) -> dict[str, Any]:
    """Roll a data stream over onto a new backing index from its current template."""
    from .datastreams import matching_template

    if name not in store.data_streams:
        raise index_not_found(name)
    ds = store.data_streams[name]
    now = now_ms() if at_ms is None else at_ms
    old = ds.indices[-1]
    found = matching_template(store, name)
    if found is None:
        raise illegal_argument(f"no matching index template found for data stream [{name}]")
    tname, body = found
    tmpl = body.get("template") or {}
    settings = dict(tmpl.get("settings") or {})
    mode = str(settings.get("index.mode") or (settings.get("index") or {}).get("mode") or "standard")
    if mode == "time_series":
        prev = _range(store, old) if old in store.indices else None
        start = prev[1] if prev else now - LOOK_MS
        end = max(now + LOOK_MS, start + LOOK_MS)
        settings["index.time_series.start_time"] = iso(start)
        settings["index.time_series.end_time"] = iso(end)
    settings["index.hidden"] = True
    gen = len(ds.indices) + 1
    while True:
        new = f".ds-{name}-{time.strftime('%Y.%m.%d', time.gmtime(now // 1000))}-{gen:06d}"
        if new not in store.indices:
            break
        gen += 1
    mappings = deep_merge({"_data_stream_timestamp": {"enabled": True}, "properties": {"@timestamp": {"type": "date"}}},
                          tmpl.get("mappings") or {})
    store.create(new, mappings, settings)
    ds.indices.append(new)
    ds.template, ds.index_mode = tname, mode
    ds.ilm_policy = settings.get("index.lifecycle.name")
    store.rolled_over_ms[old] = now
    return {"acknowledged": True, "shards_acknowledged": True, "old_index": old, "new_index": new,
            "rolled_over": True, "dry_run": False, "lazy": False, "conditions": {}}


def _resolved_template(body: dict[str, Any]) -> dict[str, Any]:
    tmpl = body.get("template") or {}
    settings: dict[str, Any] = {}
    for k, v in (tmpl.get("settings") or {}).items():  # the answer nests settings as GET _settings does
        node = settings
        parts = (k if k.startswith("index.") else f"index.{k}").split(".")
        for p in parts[:-1]:
            node = node.setdefault(p, {})
        node[parts[-1]] = [str(x) for x in v] if isinstance(v, list) else str(v).lower() if isinstance(v, bool) else str(v)
    mappings = deep_merge({"properties": {"@timestamp": {"type": "date"}}} if "data_stream" in body else {},
                          tmpl.get("mappings") or {})
    if "data_stream" in body:
        mappings["_data_stream_timestamp"] = {"enabled": True}
    return {"settings": settings, "mappings": mappings, "aliases": dict(tmpl.get("aliases") or {})}


async def h_simulate_template(srv: "RestServer", ctx: "Ctx") -> Any:
    srv.check_params(ctx, frozenset({"create", "master_timeout", "include_defaults", "cause"}))
    srv.emu.security.authorize(ctx.principal, "indices:admin/index_template/simulate")
    store = srv.emu.cluster.indices
    node = srv.body_json(ctx)
    name = ctx.path_params.get("name")
    if node is not None:
        body = node.to_python()
    elif name and name in store.composable:
        body = store.composable[name]
    elif name:
        raise ESError("resource_not_found_exception", f"index template matching [{name}] not found", 404)
    else:
        raise ESError("action_request_validation_exception", "Validation Failed: 1: index template is missing;", 400)
    if not body.get("index_patterns"):
        raise ESError("action_request_validation_exception", "Validation Failed: 1: index patterns are missing;", 400)
    patterns = [body["index_patterns"]] if isinstance(body["index_patterns"], str) else list(body["index_patterns"])
    prio = int(body.get("priority") or 0)
    overlapping = []
    for tname, other in sorted(store.composable.items()):
        if tname == name or int(other.get("priority") or 0) > prio:
            continue
        theirs = other.get("index_patterns") or []
        if any(fnmatch.fnmatchcase(a, b) or fnmatch.fnmatchcase(b, a) for a in patterns for b in theirs):
            overlapping.append({"name": tname, "index_patterns": list(theirs)})
    same = [t for t, o in store.composable.items() if t != name and int(o.get("priority") or 0) == prio
            and any(fnmatch.fnmatchcase(a, b) or fnmatch.fnmatchcase(b, a) for a in patterns for b in o.get("index_patterns") or [])]
    if same:
        raise illegal_argument(f"index template [{name or 'simulate_template'}] has index patterns {patterns} matching "
                               f"patterns from existing templates [{', '.join(sorted(same))}] with patterns "
                               f"({', '.join(sorted(same))}) that have the same priority [{prio}], multiple index "
                               "templates may not match during index creation, please use a different priority")
    return {"template": _resolved_template(body), "overlapping": [o for o in overlapping if o["name"] not in same]}


async def h_rollover(srv: "RestServer", ctx: "Ctx") -> Any:
    srv.check_params(ctx, frozenset({"dry_run", "master_timeout", "timeout", "wait_for_active_shards", "lazy"}))
    srv.emu.security.authorize(ctx.principal, "indices:admin/rollover")
    name = ctx.path_params["index"]
    if name not in srv.emu.cluster.indices.data_streams:
        raise illegal_argument(f"rollover target [{name}] does not exist")
    return rollover(srv.emu.cluster.indices, name)


async def h_index_doc(srv: "RestServer", ctx: "Ctx") -> Any:
    srv.check_params(ctx, frozenset({"refresh", "op_type", "routing", "timeout", "pipeline", "wait_for_active_shards"}))
    srv.emu.security.authorize(ctx.principal, "indices:data/write/index")
    body = srv.body_json(ctx, required=True).to_python()
    name = ctx.path_params["index"]
    dest = index_documents(srv.emu.cluster.indices, name, [body])[0]
    n = len(srv.emu.cluster.indices.documents[dest])
    return 201, {"_index": dest, "_id": f"emu{n:08d}", "_version": 1, "result": "created",
                 "_shards": {"total": 2, "successful": 1, "failed": 0}, "_seq_no": n - 1, "_primary_term": 1}


def routes(r) -> list:
    return [
        r("/_index_template/_simulate", POST=(h_simulate_template,)),
        r("/_index_template/_simulate/{name}", POST=(h_simulate_template,)),
        r("/{index}/_rollover", POST=(h_rollover,)),
        r("/{index}/_doc", POST=(h_index_doc,)),
    ]
