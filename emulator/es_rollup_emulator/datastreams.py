"""Composable index templates and data streams: only what a rollup job's source needs.

``PUT|GET|DELETE _index_template/<name>``, ``PUT|GET _data_stream/<name>`` (GET also with
wildcards or none). A data stream gets one backing index ``.ds-<name>-<yyyy.MM.dd>-000001`` built
from its template (settings, mappings, ``@timestamp``), so a rollup job's ``index_pattern`` naming
the data stream resolves to it, as on a real node. Answers follow the shapes of Elasticsearch's
``IndicesGetDataStreamResponse`` and ``IndicesGetIndexTemplateResponse``: ``index_mode`` and, for
a time series data stream, ``time_series.temporal_ranges`` (and, from 9.1, ``settings`` and
``failure_store``, inferred from the current source). Documents, rollover and template simulation
are in tsdocs.py, ILM policies and their downsample action in ilm.py. Not emulated: data stream
lifecycles (accepted and echoed, never run), component templates (``composed_of`` must be empty).
"""

from __future__ import annotations

import fnmatch
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from .errors import ESError, illegal_argument
from .indices import IndexStore, deep_merge, index_name_error, index_not_found

if TYPE_CHECKING:  # pragma: no cover
    from .server import Ctx, RestServer

_TWO_HOURS_MS = 2 * 3600 * 1000


@dataclass
class DataStream:
    name: str
    template: str
    indices: list[str]
    index_mode: str  # "standard" | "time_series"
    lifecycle: dict[str, Any] | None = None
    ilm_policy: str | None = None
    start_ms: int = field(default_factory=lambda: int(time.time() * 1000) - _TWO_HOURS_MS)


def _store(srv: "RestServer") -> IndexStore:
    return srv.emu.cluster.indices


def matching_template(store: IndexStore, name: str) -> tuple[str, dict[str, Any]] | None:
    """The composable template with the highest priority whose patterns match ``name``."""
    found = [(int(body.get("priority") or 0), tname, body) for tname, body in store.composable.items()
             if any(fnmatch.fnmatchcase(name, p) for p in body.get("index_patterns") or [])]
    if not found:
        return None
    _, tname, body = max(found, key=lambda x: (x[0], x[1]))
    return tname, body


async def h_put_index_template(srv: "RestServer", ctx: "Ctx") -> Any:
    node = srv.body_json(ctx, required=True)
    srv.check_params(ctx, frozenset({"create", "master_timeout", "cause"}))
    srv.emu.security.authorize(ctx.principal, "indices:admin/index_template/put")
    body = node.to_python()
    unknown = [k for k in body if k not in ("index_patterns", "composed_of", "template", "data_stream", "priority",
                                            "version", "_meta", "allow_auto_create", "ignore_missing_component_templates",
                                            "deprecated")]
    if unknown:
        raise ESError("x_content_parse_exception", f"[1:2] [index_template] unknown field [{unknown[0]}]", 400)
    if not body.get("index_patterns"):
        raise ESError("action_request_validation_exception", "Validation Failed: 1: index patterns are missing;", 400)
    if body.get("composed_of"):
        raise illegal_argument("the emulator has no component templates")
    patterns = body["index_patterns"]
    body["index_patterns"] = [patterns] if isinstance(patterns, str) else list(patterns)
    name = ctx.path_params["name"]
    store = _store(srv)
    if ctx.query.get("create") in ("", "true") and name in store.composable:
        raise illegal_argument(f"index template [{name}] already exists")
    store.composable[name] = body
    return {"acknowledged": True}


async def h_get_index_template(srv: "RestServer", ctx: "Ctx") -> Any:
    srv.check_params(ctx, frozenset({"flat_settings", "master_timeout", "local", "include_defaults"}))
    srv.emu.security.authorize(ctx.principal, "indices:admin/index_template/get")
    name = ctx.path_params.get("name", "*")
    out = [{"name": n, "index_template": {"composed_of": [], **b}} for n, b in sorted(_store(srv).composable.items())
           if any(fnmatch.fnmatchcase(n, p) for p in name.split(","))]
    if not out and "*" not in name:
        raise ESError("resource_not_found_exception", f"index template matching [{name}] not found", 404)
    return {"index_templates": out}


async def h_delete_index_template(srv: "RestServer", ctx: "Ctx") -> Any:
    srv.check_params(ctx, frozenset({"master_timeout", "timeout"}))
    srv.emu.security.authorize(ctx.principal, "indices:admin/index_template/delete")
    name = ctx.path_params["name"]
    if _store(srv).composable.pop(name, None) is None:
        raise ESError("resource_not_found_exception", f"index_template [{name}] missing", 404)
    return {"acknowledged": True}


def create_data_stream(store: IndexStore, name: str) -> DataStream:
    err = index_name_error(name)
    if err:
        raise err
    if name in store.data_streams or name in store.indices:
        raise ESError("resource_already_exists_exception", f"data_stream [{name}] already exists", 400)
    found = matching_template(store, name)
    if found is None or "data_stream" not in found[1]:
        raise illegal_argument(f"no matching index template found for data stream [{name}]")
    tname, body = found
    tmpl = body.get("template") or {}
    settings = dict(tmpl.get("settings") or {})
    mode = str(settings.get("index.mode") or (settings.get("index") or {}).get("mode") or "standard")
    ds = DataStream(name, tname, [], mode, lifecycle=tmpl.get("lifecycle"),
                    ilm_policy=settings.get("index.lifecycle.name"))
    day = time.strftime("%Y.%m.%d", time.gmtime())
    backing = f".ds-{name}-{day}-000001"
    mappings = deep_merge({"_data_stream_timestamp": {"enabled": True},
                           "properties": {"@timestamp": {"type": "date"}}}, tmpl.get("mappings") or {})
    if mode == "time_series":
        settings["index.time_series.start_time"] = _iso(ds.start_ms)
        settings["index.time_series.end_time"] = _iso(ds.start_ms + 2 * _TWO_HOURS_MS)
    settings["index.hidden"] = True
    store.create(backing, mappings, settings)
    ds.indices.append(backing)
    store.data_streams[name] = ds
    return ds


def _iso(ms: int) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(ms / 1000)) + f".{ms % 1000:03d}Z"


async def h_put_data_stream(srv: "RestServer", ctx: "Ctx") -> Any:
    srv.check_params(ctx, frozenset({"master_timeout", "timeout"}))
    srv.emu.security.authorize(ctx.principal, "indices:admin/data_stream/create")
    create_data_stream(_store(srv), ctx.path_params["name"])
    return {"acknowledged": True}


def _describe(store: IndexStore, ds: DataStream, recent: bool) -> dict[str, Any]:
    ilm = ds.ilm_policy is not None
    managed = "Index Lifecycle Management" if ilm else "Data stream lifecycle" if ds.lifecycle else "Unmanaged"
    out: dict[str, Any] = {
        "name": ds.name,
        "timestamp_field": {"name": "@timestamp"},
        "indices": [{"index_name": n, "index_uuid": store.indices[n].uuid, "prefer_ilm": True, "managed_by": managed,
                     "index_mode": ds.index_mode} for n in ds.indices if n in store.indices],
        "generation": len(ds.indices),
        "status": "GREEN",
        "template": ds.template,
        "next_generation_managed_by": managed,
        "prefer_ilm": True,
        "hidden": False,
        "system": False,
        "allow_custom_routing": False,
        "replicated": False,
        "rollover_on_write": False,
        "index_mode": ds.index_mode,
    }
    if ilm:
        out["ilm_policy"] = ds.ilm_policy
    if ds.lifecycle is not None:
        out["lifecycle"] = {"enabled": True, **ds.lifecycle}
    if recent:  # inferred: the data stream's own settings and failure store, as the current source writes them
        out["settings"] = {}
        out["failure_store"] = {"enabled": False, "rollover_on_write": True, "indices": []}
    if ds.index_mode == "time_series":
        out["time_series"] = {"temporal_ranges": [{"start": _iso(ds.start_ms), "end": _iso(ds.start_ms + 2 * _TWO_HOURS_MS)}]}
    return out


async def h_get_data_stream(srv: "RestServer", ctx: "Ctx") -> Any:
    srv.check_params(ctx, frozenset({"expand_wildcards", "include_defaults", "master_timeout", "verbose"}))
    srv.emu.security.authorize(ctx.principal, "indices:admin/data_stream/get")
    store = _store(srv)
    out = []
    for part in ctx.path_params.get("name", "*").split(","):
        if part in ("*", "_all") or "*" in part:
            out += [n for n in sorted(store.data_streams) if fnmatch.fnmatchcase(n, part if part != "_all" else "*")]
        elif part in store.data_streams:
            out.append(part)
        else:
            raise index_not_found(part)
    recent = srv.emu.profile.at_least(9, 1)
    return {"data_streams": [_describe(store, store.data_streams[n], recent) for n in dict.fromkeys(out)]}


def routes(r) -> list:
    """The routes this module serves, built with server.py's route helper."""
    return [
        r("/_index_template/{name}", PUT=(h_put_index_template,), POST=(h_put_index_template,),
          GET=(h_get_index_template,), DELETE=(h_delete_index_template,)),
        r("/_index_template", GET=(h_get_index_template,)),
        r("/_data_stream/{name}", PUT=(h_put_data_stream,), GET=(h_get_data_stream,)),
        r("/_data_stream", GET=(h_get_data_stream,)),
    ]
