"""The HTTP face of the emulator: routing, REST-layer checks, envelopes and headers.

Request pipeline, in the order a real node applies it:

1. ``/_emulator/...`` control calls go to :mod:`.control` (no latency, faults, auth or logging).
2. injected latency, then injected failures (``fail_next``);
3. ``Accept``/``Content-Type`` media types (8.x/9.x check ``compatible-with``:
   400 ``media_type_header_exception``; a body without JSON content type: 406);
4. routing: unknown path -> 400 ``no handler found for uri [..] and method [..]``; known path,
   wrong method -> 405 ``Incorrect HTTP method for uri [..] and method [..], allowed: [..]``;
5. authentication (401), body parsing (400), unknown query parameters (400), then the action:
   authorization (403) and the rollup logic.

Every response carries ``X-Elastic-Product: Elasticsearch`` (unless ``not_elasticsearch``), and
on 9.x every rollup call carries the deprecation ``Warning`` header. ``pretty``, ``human``,
``error_trace`` and ``filter_path`` are accepted everywhere (``filter_path`` and ``pretty`` are
applied, ``error_trace`` adds a ``stack_trace``).
"""

from __future__ import annotations

import asyncio
import fnmatch
import json
import time
import urllib.parse
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Awaitable, Callable

from aiohttp import web

from .errors import ESError, PLAIN, RawResponse, SimpleError, parse_error, timeout_exception, validation_failed
from . import datastreams, ilm, rollup_data, search, tsdocs
from .indices import index_not_found, version_id
from .jobconfig import parse_job_config, validate_mappings
from .params import parse_boolean, parse_time, unrecognized_params_message
from .xcontent import parse_json

if TYPE_CHECKING:  # pragma: no cover
    from .emulator import ElasticsearchEmulator

GLOBAL_PARAMS = frozenset({"pretty", "human", "error_trace", "filter_path"})


@dataclass
class RequestRecord:
    """One logged request."""

    method: str
    path: str
    query: dict[str, str]
    status: int
    timestamp: float
    user: str | None
    duration: float = 0.0
    raw_path: str = ""  # the path as it arrived on the wire, percent-encoding untouched
    client: str | None = None  # the client's address (IP), as the server saw the connection


@dataclass
class Ctx:
    request: web.Request
    method: str
    path: str
    uri: str
    query: dict[str, str]
    path_params: dict[str, str] = field(default_factory=dict)
    consumed: set[str] = field(default_factory=set)
    principal: Any = None
    compat: int | None = None
    warnings: list[str] = field(default_factory=list)
    body: bytes = b""

    def param(self, name: str, default: str | None = None) -> str | None:
        self.consumed.add(name)
        return self.query.get(name, default)


Handler = Callable[["RestServer", Ctx], Awaitable[Any]]


@dataclass
class Route:
    pattern: tuple[str, ...]
    handlers: dict[str, tuple[Handler, frozenset[str], bool]]  # method -> (fn, params, rollup?)


def _parse_media_type(value: str | None) -> tuple[str, dict[str, str]] | None:
    if not value:
        return None
    first = value.split(",")[0]
    parts = [p.strip() for p in first.split(";")]
    mtype = parts[0].lower()
    params = {}
    for p in parts[1:]:
        if "=" in p:
            k, v = p.split("=", 1)
            params[k.strip().lower()] = v.strip()
    return mtype, params


def _media_repr(mt: tuple[str, dict[str, str]]) -> str:
    return mt[0] + "".join(f"; {k}={v}" for k, v in mt[1].items())


def _compat_version(mt: tuple[str, dict[str, str]] | None) -> int | None:
    if mt is None:
        return None
    v = mt[1].get("compatible-with")
    if v is None:
        return None
    try:
        return int(v)
    except ValueError:
        return -1


def _is_json(mt: tuple[str, dict[str, str]] | None) -> bool:
    return mt is not None and mt[0] in ("application/json", "application/vnd.elasticsearch+json")


def filter_response(obj: Any, filter_path: str) -> Any:
    """``filter_path`` with ``*`` segments, ``**`` any depth and ``-`` exclusions."""
    includes = [p.split(".") for p in filter_path.split(",") if p and not p.startswith("-")]
    excludes = [p[1:].split(".") for p in filter_path.split(",") if p.startswith("-")]

    def matches(path: list[str], pattern: list[str], prefix_ok: bool) -> bool:
        if not pattern:
            return True
        if not path:
            return prefix_ok
        if pattern[0] == "**":
            return matches(path, pattern[1:], prefix_ok) or matches(path[1:], pattern, prefix_ok)
        if fnmatch.fnmatchcase(path[0], pattern[0]):
            return matches(path[1:], pattern[1:], prefix_ok)
        return False

    def walk(node: Any, path: list[str]) -> Any:
        if isinstance(node, dict):
            out = {}
            for k, v in node.items():
                p = path + [k]
                if any(matches(p, e, False) for e in excludes):
                    continue
                if includes and not any(matches(p, i, True) for i in includes):
                    continue
                if includes and any(matches(p, i, False) for i in includes) and not excludes:
                    out[k] = v
                    continue
                sub = walk(v, p)
                if isinstance(v, (dict, list)) and sub in ({}, []) and v not in ({}, []):
                    continue
                out[k] = sub
            return out
        if isinstance(node, list):
            items = [walk(v, path) for v in node]
            return [i for i in items if i not in ({}, [])] if includes else items
        return node

    return walk(obj, [])


class RestServer:
    def __init__(self, emu: "ElasticsearchEmulator"):
        self.emu = emu
        self.routes = _build_routes()

    # -- entry point ----------------------------------------------------------------------------
    async def handle(self, request: web.Request) -> web.StreamResponse:
        raw_path = request.rel_url.raw_path
        if raw_path == "/_emulator" or raw_path.startswith("/_emulator/"):
            return await self.emu.control.handle(request)
        started = time.time()
        t0 = asyncio.get_running_loop().time()
        query = {k: v for k, v in request.rel_url.query.items()}
        raw_query = request.rel_url.raw_query_string
        uri = raw_path + (f"?{raw_query}" if raw_query else "")
        ctx = Ctx(request, request.method, urllib.parse.unquote(raw_path), uri, query)
        if self.emu.latency > 0:
            await asyncio.sleep(self.emu.latency)
        try:
            response = await self._process(ctx)
        except ConnectionResetError:  # the node "restarted" under this request: drop the connection
            if request.transport is not None:
                request.transport.close()
            return web.Response(status=500)
        except Exception as e:  # noqa: BLE001 - an emulator bug: answer as a node's unhandled exception, and log it
            response = self._respond(ctx, 500, ESError("exception", f"{type(e).__name__}: {e}", 500).body())
        if self.emu.log_requests:
            user = ctx.principal.name if ctx.principal is not None else None
            self.emu._log(RequestRecord(ctx.method, ctx.path, query, response.status, started, user,
                                        asyncio.get_running_loop().time() - t0, raw_path, request.remote))
        return response

    async def _process(self, ctx: Ctx) -> web.StreamResponse:
        fault = self.emu._take_fault(ctx.method, ctx.path)
        if fault is not None:
            return self._fault_response(ctx, fault)
        rollup = False
        try:
            if ctx.method not in ("GET", "HEAD", "DELETE", "OPTIONS"):
                ctx.body = await ctx.request.read()
            elif ctx.request.can_read_body:
                ctx.body = await ctx.request.read()
            self._check_media_types(ctx)
            route, params = self._route(ctx.request.rel_url.raw_path)
            if route is None:
                raise SimpleError(400, f"no handler found for uri [{ctx.uri}] and method [{ctx.method}]")
            if ctx.method not in route.handlers:
                allowed = [m for m in ("GET", "POST", "PUT", "DELETE", "HEAD") if m in route.handlers]
                if ctx.method == "OPTIONS":
                    return self._respond(ctx, 200, b"", extra={"Allow": ",".join(allowed)}, raw=True)
                raise SimpleError(405, f"Incorrect HTTP method for uri [{ctx.uri}] and method [{ctx.method}], "
                                       f"allowed: [{', '.join(allowed)}]", {"Allow": ",".join(allowed)})
            fn, allowed_params, rollup = route.handlers[ctx.method]
            ctx.path_params = params
            ctx.consumed.update(GLOBAL_PARAMS)
            ctx.principal = self.emu.security.authenticate(ctx.request.headers.get("Authorization"), ctx.uri)
            result = await fn(self, ctx)
            status, body = result if isinstance(result, tuple) else (200, result)
            return self._respond(ctx, status, body, rollup=rollup)
        except ESError as e:
            extra = {"WWW-Authenticate": e.header["WWW-Authenticate"]} if "WWW-Authenticate" in e.header else None
            err_trace = ctx.query.get("error_trace") in ("", "true")
            return self._respond(ctx, e.status, e.body(error_trace=err_trace), extra=extra, rollup=rollup)
        except RawResponse as r:
            return self._respond(ctx, r.status, r.body, rollup=rollup)
        except SimpleError as s:
            return self._respond(ctx, s.status, s.body(), extra=s.headers, rollup=rollup)

    # -- checks ---------------------------------------------------------------------------------
    def _check_media_types(self, ctx: Ctx) -> None:
        profile = self.emu.profile
        accept = _parse_media_type(ctx.request.headers.get("Accept"))
        ctype = _parse_media_type(ctx.request.headers.get("Content-Type"))
        has_content = len(ctx.body) > 0
        if profile.checks_compatible_with:
            current, minimum = profile.compatible_majors
            a_ver, c_ver = _compat_version(accept), _compat_version(ctype)
            acc_v = a_ver if a_ver is not None else current
            con_v = c_ver if c_ver is not None else current
            failed: ESError | None = None
            if not minimum <= acc_v <= current:
                failed = ESError("status_exception", f"Accept version must be either version {current} or {minimum}, "
                                 f"but found {acc_v}. Accept={_media_repr(accept) if accept else None}", 400)
            elif has_content:
                ct = _media_repr(ctype) if ctype else None
                at = _media_repr(accept) if accept else None
                if not minimum <= con_v <= current:
                    failed = ESError("status_exception", f"Content-Type version must be either version {current} or "
                                     f"{minimum}, but found {con_v}. Content-Type={ct}", 400)
                elif con_v != acc_v:
                    failed = ESError("status_exception", "A compatible version is required on both Content-Type and "
                                     "Accept headers if either one has requested a compatible version and the "
                                     f"compatible versions must match. Accept={at}, Content-Type={ct}", 400)
                elif (c_ver is None) != (a_ver is None):
                    failed = ESError("status_exception", "A compatible version is required on both Content-Type and "
                                     "Accept headers if either one has requested a compatible version. "
                                     f"Accept={at}, Content-Type={ct}", 400)
            if failed is not None:
                raise ESError("media_type_header_exception",
                              "Invalid media-type value on headers [Accept, Content-Type]", 400, PLAIN, failed)
            if a_ver is not None:
                ctx.compat = a_ver
        if has_content and not _is_json(ctype):
            raw = ctx.request.headers.get("Content-Type")
            if raw is None:
                raise SimpleError(406, "Content-Type header is missing")
            raise SimpleError(406, f"Content-Type header [{raw}] is not supported")

    def _route(self, path: str) -> tuple[Route | None, dict[str, str]]:
        segs = tuple(urllib.parse.unquote(s) for s in path.strip("/").split("/")) if path.strip("/") else ()
        best: tuple[int, Route, dict[str, str]] | None = None
        for route in self.routes:
            if len(route.pattern) != len(segs):
                continue
            params: dict[str, str] = {}
            score = 0
            for pat, seg in zip(route.pattern, segs):
                if pat.startswith("{"):
                    if seg == "" or (pat == "{index}" and seg.startswith("_")):
                        break
                    params[pat[1:-1]] = seg
                elif pat == seg:
                    score += 1
                else:
                    break
            else:
                if best is None or score > best[0]:
                    best = (score, route, params)
        return (best[1], best[2]) if best else (None, {})

    def check_params(self, ctx: Ctx, allowed: frozenset[str] = frozenset()) -> None:
        ctx.consumed.update(allowed)
        ctx.consumed.update(ctx.path_params)
        unknown = [k for k in ctx.query if k not in ctx.consumed]
        if unknown:
            raise ESError("illegal_argument_exception",
                          unrecognized_params_message(ctx.path, unknown, ctx.consumed), 400, PLAIN)

    # -- responses ------------------------------------------------------------------------------
    def _respond(self, ctx: Ctx, status: int, body: Any, extra: dict[str, Any] | None = None,
                 rollup: bool = False, raw: bool = False) -> web.Response:
        emu = self.emu
        profile = emu.profile
        headers: list[tuple[str, str]] = []
        if not emu.not_elasticsearch:
            headers.append(("X-Elastic-Product", "Elasticsearch"))
        if rollup and profile.rollup_deprecation_warning:
            headers.append(("Warning", profile.warning_header))
        for w in ctx.warnings:
            headers.append(("Warning", f'299 Elasticsearch-{profile.number}-{profile.build_hash} "{w}"'))
        for k, v in (extra or {}).items():
            for item in (v if isinstance(v, list) else [v]):
                headers.append((k, item))
        if raw:
            payload = body
        else:
            pretty = ctx.query.get("pretty") in ("", "true")
            fp = ctx.query.get("filter_path")
            if isinstance(body, str):
                if fp or pretty:
                    body = json.loads(body)
                else:
                    payload = body.encode()
            if not isinstance(body, str):
                if fp:
                    body = filter_response(body, fp)
                if pretty:
                    payload = (json.dumps(body, indent=2, separators=(",", " : ")) + "\n").encode()
                else:
                    payload = json.dumps(body, separators=(",", ":")).encode()
            ctype = profile.compat_content_type(ctx.compat) if ctx.compat is not None else profile.json_content_type
            headers.append(("Content-Type", ctype))
        if ctx.method == "HEAD":  # as a real node: the GET's status and headers, its Content-Length, no body
            headers.append(("Content-Length", str(len(payload))))
            return web.Response(status=status, headers=_multi(headers))
        return web.Response(status=status, body=payload, headers=_multi(headers))

    def _fault_response(self, ctx: Ctx, fault: dict[str, Any]) -> web.Response:
        status = fault["status"]
        if fault.get("body") is not None:  # a given answer, e.g. a malformed 200 or a foreign error page
            body = fault["body"]
            headers = {} if self.emu.not_elasticsearch else {"X-Elastic-Product": "Elasticsearch"}
            if isinstance(body, str):
                return web.Response(status=status, text=body, content_type="text/plain", headers=headers)
            if isinstance(body, bytes):  # raw JSON text, e.g. b'{"n": 1e400}' that json.dumps cannot write
                return web.Response(status=status, body=body, content_type="application/json", headers=headers)
            return self._respond(ctx, status, body)
        if status in (502, 504):
            text = {502: "Bad Gateway", 504: "Gateway Timeout"}[status]
            return web.Response(status=status, text=f"<html><body><h1>{status} {text}</h1></body></html>",
                                content_type="text/html")
        err = _fault_error(status, fault.get("type"), fault.get("reason"))
        return self._respond(ctx, status, err.body())

    # -- handlers -------------------------------------------------------------------------------
    def body_json(self, ctx: Ctx, required: bool = False) -> Any:
        if not ctx.body:
            if required:
                raise ESError("parse_exception", "request body is required", 400)
            return None
        node = parse_json(ctx.body.decode("utf-8"))
        return node


def _multi(headers: list[tuple[str, str]]):
    from multidict import CIMultiDict
    return CIMultiDict(headers)


def _fault_error(status: int, etype: str | None, reason: str | None) -> ESError:
    defaults = {
        503: ("cluster_block_exception", "blocked by: [SERVICE_UNAVAILABLE/1/state not recovered / initialized];"),
        429: ("es_rejected_execution_exception",
              "rejected execution of coordinating operation [coordinating_and_primary_bytes=0, replica_bytes=0, "
              "all_bytes=0, coordinating_operation_bytes=1, max_coordinating_and_primary_bytes=0]"),
        500: ("exception", "emulated internal server error"),
        401: ("security_exception", "unable to authenticate user [emulated] for REST request [/]"),
        403: ("security_exception", "action [cluster:admin/xpack/rollup/stop] is unauthorized"),
        404: ("resource_not_found_exception", "emulated not found"),
        409: ("version_conflict_engine_exception", "emulated conflict"),
    }
    dt, dr = defaults.get(status, ("exception", f"emulated failure with status {status}"))
    return ESError(etype or dt, reason or dr, status)


# -- handlers -------------------------------------------------------------------------------------
async def h_main(srv: RestServer, ctx: Ctx) -> Any:
    srv.check_params(ctx)
    srv.emu.security.authorize(ctx.principal, "cluster:monitor/main")
    emu = srv.emu
    p = emu.profile
    return {
        "name": emu.node_name,
        "cluster_name": emu.cluster_name,
        "cluster_uuid": emu.cluster_uuid,
        "version": {
            "number": p.number,
            "build_flavor": "default",
            "build_type": "docker",
            "build_hash": p.build_hash,
            "build_date": "2024-12-11T12:08:05.663969764Z",
            "build_snapshot": False,
            "lucene_version": p.lucene_version,
            "minimum_wire_compatibility_version": p.minimum_wire_compatibility_version,
            "minimum_index_compatibility_version": p.minimum_index_compatibility_version,
        },
        "tagline": "You Know, for Search",
    }


async def h_health(srv: RestServer, ctx: Ctx) -> Any:
    srv.check_params(ctx, frozenset({"level", "local", "master_timeout", "timeout", "wait_for_status",
                                     "wait_for_nodes", "wait_for_events", "wait_for_no_relocating_shards",
                                     "wait_for_no_initializing_shards", "wait_for_active_shards", "expand_wildcards"}))
    srv.emu.security.authorize(ctx.principal, "cluster:monitor/health")
    n = len(srv.emu.cluster.indices.indices)
    return {"cluster_name": srv.emu.cluster_name, "status": "green", "timed_out": False, "number_of_nodes": 1,
            "number_of_data_nodes": 1, "active_primary_shards": n, "active_shards": n, "relocating_shards": 0,
            "initializing_shards": 0, "unassigned_shards": 0, "delayed_unassigned_shards": 0,
            "number_of_pending_tasks": 0, "number_of_in_flight_fetch": 0, "task_max_waiting_in_queue_millis": 0,
            "active_shards_percent_as_number": 100.0}


async def h_authenticate(srv: RestServer, ctx: Ctx) -> Any:
    srv.check_params(ctx)
    if ctx.principal is None:
        return {"username": "_anonymous", "roles": [], "full_name": None, "email": None, "metadata": {},
                "enabled": True, "authentication_type": "anonymous"}
    return srv.emu.security.authenticate_body(ctx.principal)


async def h_put_job(srv: RestServer, ctx: Ctx) -> Any:
    node = srv.body_json(ctx, required=True)
    config = parse_job_config(node, ctx.path_params["id"], legacy_interval=srv.emu.profile.major < 8)
    srv.check_params(ctx)
    srv.emu.security.authorize(ctx.principal, "cluster:admin/xpack/rollup/put")
    if config.groups is None:
        raise ESError("null_pointer_exception",
                      'Cannot invoke "org.elasticsearch.xpack.core.rollup.job.GroupConfig.getDateHistogram()" because '
                      'the return value of "org.elasticsearch.xpack.core.rollup.job.RollupJobConfig.getGroupConfig()" '
                      "is null", 500, PLAIN)
    cluster = srv.emu.cluster
    cluster.check_rollup_usage()
    caps = cluster.indices.field_caps(config.index_pattern, config.all_fields())
    errors = validate_mappings(config, caps)
    if errors:
        raise validation_failed(errors)
    cluster.put_job(config)
    return {"acknowledged": True}


async def h_get_jobs(srv: RestServer, ctx: Ctx) -> Any:
    srv.check_params(ctx)
    srv.emu.security.authorize(ctx.principal, "cluster:monitor/xpack/rollup/get")
    cluster = srv.emu.cluster
    return cluster.jobs_json(cluster.get_jobs(ctx.path_params["id"]))


async def h_start_job(srv: RestServer, ctx: Ctx) -> Any:
    srv.check_params(ctx)
    srv.emu.security.authorize(ctx.principal, "cluster:admin/xpack/rollup/start")
    return srv.emu.cluster.start_job(ctx.path_params["id"])


async def h_stop_job(srv: RestServer, ctx: Ctx) -> Any:
    wait = parse_boolean(ctx.param("wait_for_completion"), False)
    timeout_raw = ctx.param("timeout")
    timeout = parse_time(timeout_raw, "timeout") if timeout_raw is not None else parse_time("30s", "timeout")
    srv.check_params(ctx)
    srv.emu.security.authorize(ctx.principal, "cluster:admin/xpack/rollup/stop")
    job_id = ctx.path_params["id"]
    cluster = srv.emu.cluster
    job = cluster.stop_job(job_id)
    if wait:
        stopped = await cluster.wait_stopped(job, timeout.seconds, srv.emu.poll_emulation)
        if not stopped:
            raise timeout_exception(
                f"Timed out after [{timeout.rep}] while waiting for rollup job [{job_id}] to stop. "
                f"State was [{job.state.upper()}]", srv.emu.profile.stop_timeout_status)
    return {"stopped": True}


async def h_delete_job(srv: RestServer, ctx: Ctx) -> Any:
    srv.check_params(ctx)
    srv.emu.security.authorize(ctx.principal, "cluster:admin/xpack/rollup/delete")
    return srv.emu.cluster.delete_job(ctx.path_params["id"])


INDEX_CREATE_PARAMS = frozenset({"wait_for_active_shards", "timeout", "master_timeout", "include_type_name"})
INDEX_READ_PARAMS = frozenset({"local", "ignore_unavailable", "allow_no_indices", "expand_wildcards",
                               "flat_settings", "include_defaults", "master_timeout", "features", "include_type_name"})


async def h_create_index(srv: RestServer, ctx: Ctx) -> Any:
    node = srv.body_json(ctx)
    body = node.to_python() if node is not None else {}
    if not isinstance(body, dict):
        raise parse_error("[1:1] Expected START_OBJECT")
    srv.check_params(ctx, INDEX_CREATE_PARAMS)
    srv.emu.security.authorize(ctx.principal, "indices:admin/create")
    name = ctx.path_params["index"]
    unknown = [k for k in body if k not in ("mappings", "settings", "aliases")]
    if unknown:
        raise parse_error(f"unknown key [{unknown[0]}] for create index")
    _, warnings = srv.emu.cluster.indices.create(name, body.get("mappings"), body.get("settings"), body.get("aliases"))
    ctx.warnings.extend(warnings)
    return {"acknowledged": True, "shards_acknowledged": True, "index": name}


def _resolve_existing(srv: RestServer, expression: str) -> list[str]:
    store = srv.emu.cluster.indices
    names: list[str] = []
    for part in expression.split(","):
        if "*" in part or part == "_all":
            names += [n for n in store.resolve(part) if n not in names]
        elif part in store.indices:
            names.append(part)
        elif part in store.data_streams:
            names += [n for n in store.data_streams[part].indices if n not in names]
        else:
            raise index_not_found(part)
    return names


async def h_get_index(srv: RestServer, ctx: Ctx) -> Any:
    srv.check_params(ctx, INDEX_READ_PARAMS)
    srv.emu.security.authorize(ctx.principal, "indices:admin/get")
    store = srv.emu.cluster.indices
    vid = version_id(srv.emu.profile.number)
    out = {}
    for n in _resolve_existing(srv, ctx.path_params["index"]):
        ix = store.indices[n]
        out[n] = {"aliases": ix.aliases, "mappings": ix.mappings, "settings": ix.settings_body(vid)}
    return out




async def h_delete_index(srv: RestServer, ctx: Ctx) -> Any:
    srv.check_params(ctx, frozenset({"timeout", "master_timeout", "ignore_unavailable", "allow_no_indices",
                                     "expand_wildcards"}))
    srv.emu.security.authorize(ctx.principal, "indices:admin/delete")
    srv.emu.cluster.indices.delete(ctx.path_params["index"])
    return {"acknowledged": True}


async def h_get_mapping(srv: RestServer, ctx: Ctx) -> Any:
    srv.check_params(ctx, INDEX_READ_PARAMS)
    srv.emu.security.authorize(ctx.principal, "indices:admin/mappings/get")
    store = srv.emu.cluster.indices
    names = _resolve_existing(srv, ctx.path_params.get("index", "_all"))
    return {n: {"mappings": store.indices[n].mappings} for n in names}


async def h_put_mapping(srv: RestServer, ctx: Ctx) -> Any:
    node = srv.body_json(ctx, required=True)
    srv.check_params(ctx, frozenset({"timeout", "master_timeout", "ignore_unavailable", "allow_no_indices",
                                     "expand_wildcards", "write_index_only"}))
    srv.emu.security.authorize(ctx.principal, "indices:admin/mapping/put")
    from .indices import deep_merge
    store = srv.emu.cluster.indices
    for n in _resolve_existing(srv, ctx.path_params["index"]):
        store.indices[n].mappings = deep_merge(store.indices[n].mappings, node.to_python())
    return {"acknowledged": True}


async def h_put_template(srv: RestServer, ctx: Ctx) -> Any:
    node = srv.body_json(ctx, required=True)
    srv.check_params(ctx, frozenset({"order", "create", "master_timeout", "cause", "timeout"}))
    srv.emu.security.authorize(ctx.principal, "cluster:admin/template/put")
    body = node.to_python()
    if "order" in ctx.query:
        body["order"] = ctx.query["order"]
    srv.emu.cluster.indices.put_template(ctx.path_params["name"], body)
    return {"acknowledged": True}


async def h_get_template(srv: RestServer, ctx: Ctx) -> Any:
    srv.check_params(ctx, frozenset({"flat_settings", "master_timeout", "local"}))
    srv.emu.security.authorize(ctx.principal, "cluster:monitor/template/get")
    templates = srv.emu.cluster.indices.templates
    name = ctx.path_params.get("name", "*")
    out = {t.name: {"order": t.order, "index_patterns": t.index_patterns, "settings": t.settings,
                    "mappings": t.mappings, "aliases": t.aliases}
           for t in templates.values() if any(fnmatch.fnmatchcase(t.name, p) for p in name.split(","))}
    if not out and "*" not in name:
        return 404, {}
    return out


async def h_delete_template(srv: RestServer, ctx: Ctx) -> Any:
    srv.check_params(ctx, frozenset({"master_timeout", "timeout"}))
    srv.emu.security.authorize(ctx.principal, "cluster:admin/template/delete")
    name = ctx.path_params["name"]
    if srv.emu.cluster.indices.templates.pop(name, None) is None:
        raise ESError("index_template_missing_exception", f"index_template [{name}] missing", 404)
    return {"acknowledged": True}


def _build_routes() -> list[Route]:
    stop = frozenset({"wait_for_completion", "timeout"})
    none: frozenset[str] = frozenset()

    def r(path: str, **methods: tuple) -> Route:
        pattern = tuple(s for s in path.strip("/").split("/") if s)
        return Route(pattern, {m: (spec[0], spec[1] if len(spec) > 1 else none, spec[2] if len(spec) > 2 else False)
                               for m, spec in methods.items()})

    return [
        r("/", GET=(h_main,), HEAD=(h_main,)),
        r("/_rollup/job/{id}", GET=(h_get_jobs, none, True), PUT=(h_put_job, none, True),
          DELETE=(h_delete_job, none, True)),
        r("/_rollup/job/{id}/_start", POST=(h_start_job, none, True)),
        r("/_rollup/job/{id}/_stop", POST=(h_stop_job, stop, True)),
        r("/_security/_authenticate", GET=(h_authenticate,)),
        r("/_cluster/health", GET=(h_health,)),
        r("/_template/{name}", PUT=(h_put_template,), POST=(h_put_template,), GET=(h_get_template,),
          DELETE=(h_delete_template,)),
        r("/_template", GET=(h_get_template,)),
        r("/_mapping", GET=(h_get_mapping,)),
        r("/{index}/_mapping", GET=(h_get_mapping,), PUT=(h_put_mapping,), POST=(h_put_mapping,)),
        *tsdocs.routes(r), *ilm.routes(r), *search.routes(r), *rollup_data.routes(r),
        *datastreams.routes(r),
        r("/{index}", PUT=(h_create_index,), GET=(h_get_index,), HEAD=(h_get_index,), DELETE=(h_delete_index,)),
    ]
