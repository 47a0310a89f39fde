"""The ``/_emulator/...`` control API, for driving the emulator from another process.

Control calls bypass latency, injected failures, authentication and the request log. Bodies and
answers are JSON. Errors answer ``{"error": "<message>"}`` with 400/404.

=========================================  ==================================================
``GET /_emulator``                         summary: version, url, job counts by state, timing
``GET /_emulator/jobs``                    ``{id: {"state", "stats", "overrides"}}``
``POST /_emulator/jobs``                   seed: ``{"id", "config"?, "state"?, timing..}`` or
                                           ``{"count": n, "prefix"?, "state"?, timing..}``
``GET /_emulator/jobs/<id>``               the job as GET _rollup/job shows it
``DELETE /_emulator/jobs/<id>``            out-of-band delete (any state)
``POST /_emulator/jobs/<id>/_trigger``     fire the schedule now (``{"triggered": bool}``)
``POST /_emulator/jobs/<id>/_start``       out-of-band start
``POST /_emulator/jobs/<id>/_stop``        out-of-band stop
``POST /_emulator/jobs/<id>/_state``       force a state: ``{"state": "aborting"}``
``POST /_emulator/jobs/<id>/_timing``      per-job ``page_duration``, ``docs_per_page``,
                                           ``pages_per_run``, ``stop_delay``
``POST /_emulator/timing``                 the same, as global defaults; ``auto_trigger`` too
``POST /_emulator/trigger_all``            fire every started job
``POST /_emulator/faults``                 ``{"latency": s, "down_for": s, "not_elasticsearch": b,
                                           "fail_next": {"count", "status", "method", "path", "body",
                                           "type", "reason"}, "clear": true}``
``POST /_emulator/restart``                node restart: ``{"downtime": s}``
``GET /_emulator/requests``                request log (``?method=&path=``), ``DELETE`` clears
``GET /_emulator/requests/_count``         ``{"count": n}`` (same filters)
``PUT /_emulator/users/<name>``            ``{"password", "privileges", "roles"?}``; ``DELETE``
``PUT /_emulator/api_keys/<id>``           ``{"key", "privileges", "owner"?}``; ``DELETE``
``PUT /_emulator/indices/<name>``          ``{"mappings"?, "settings"?}``
``POST /_emulator/rollup_usage``           create an index with ``_meta._rollup``
``POST /_emulator/docs/<target>``          ``{"docs": [...]}`` into an index or data stream
``POST /_emulator/jobs/<id>/_rollup_now``  write the job's rollup documents now
``POST /_emulator/ilm/_run``               one ILM pass, ``{"advance": "2d"}`` later
=========================================  ==================================================

``down_for`` closes the listening socket, so the control API itself is unreachable until the
emulator comes back.
"""

from __future__ import annotations

import dataclasses
import urllib.parse
from typing import TYPE_CHECKING, Any

from aiohttp import web

from .errors import ESError

if TYPE_CHECKING:  # pragma: no cover
    from .emulator import ElasticsearchEmulator

_TIMING = ("page_duration", "docs_per_page", "pages_per_run", "stop_delay")


class ControlError(Exception):
    def __init__(self, status: int, message: str):
        super().__init__(message)
        self.status = status


class ControlApi:
    def __init__(self, emu: "ElasticsearchEmulator"):
        self.emu = emu

    async def handle(self, request: web.Request) -> web.Response:
        segs = [urllib.parse.unquote(s) for s in request.rel_url.raw_path.strip("/").split("/")[1:]]
        try:
            body = await request.json() if request.can_read_body else {}
            if body is None:
                body = {}
            result = await self._dispatch(request.method, segs, body, dict(request.rel_url.query))
            return web.json_response(result)
        except ControlError as e:
            return web.json_response({"error": str(e)}, status=e.status)
        except ESError as e:
            return web.json_response(e.body(), status=e.status)
        except (KeyError, ValueError, TypeError) as e:
            return web.json_response({"error": f"{type(e).__name__}: {e}"}, status=400)

    async def _dispatch(self, method: str, segs: list[str], body: dict[str, Any], query: dict[str, str]) -> Any:
        emu = self.emu
        head = segs[0] if segs else ""
        if not segs or head == "":
            return emu.info()
        if head == "jobs":
            return await self._jobs(method, segs[1:], body)
        if head == "timing" and method == "POST":
            timing = {k: body[k] for k in _TIMING if k in body}
            emu.set_timing(**timing)
            if "auto_trigger" in body:
                emu.set_auto_trigger(bool(body["auto_trigger"]))
            return emu.info()
        if head == "trigger_all" and method == "POST":
            return {"triggered": emu.trigger_all()}
        if head == "faults" and method == "POST":
            if body.get("clear"):
                emu.clear_faults()
            if "latency" in body:
                emu.set_latency(float(body["latency"]))
            if "not_elasticsearch" in body:
                emu.set_not_elasticsearch(bool(body["not_elasticsearch"]))
            fn = body.get("fail_next")
            if fn:
                emu.fail_next(int(fn.get("count", 1)), int(fn.get("status", 503)), method=fn.get("method"),
                              path=fn.get("path"), error_type=fn.get("type"), reason=fn.get("reason"), body=fn.get("body"))
            if "down_for" in body:
                emu.down_for(float(body["down_for"]))
            return {"acknowledged": True}
        if head == "restart" and method == "POST":
            emu._spawn(emu.restart(float(body.get("downtime", 0.0))))
            return {"acknowledged": True}
        if head == "requests":
            if method == "DELETE":
                emu.clear_requests()
                return {"acknowledged": True}
            records = emu.requests(query.get("method"), query.get("path"))
            if len(segs) > 1 and segs[1] == "_count":
                return {"count": len(records)}
            return {"requests": [dataclasses.asdict(r) for r in records]}
        if head == "users" and len(segs) == 2:
            if method == "DELETE":
                emu.remove_user(segs[1])
            else:
                emu.set_user(segs[1], body["password"], body.get("privileges", []), body.get("roles"))
            return {"acknowledged": True}
        if head == "api_keys" and len(segs) == 2:
            if method == "DELETE":
                emu.revoke_api_key(segs[1])
            else:
                emu.set_api_key(segs[1], body["key"], body.get("privileges", []), body.get("owner", "api_key_owner"))
            return {"acknowledged": True}
        if head == "indices" and len(segs) == 2 and method in ("PUT", "POST"):
            emu.create_index(segs[1], body.get("mappings"), body.get("settings"))
            return {"acknowledged": True}
        if head == "ilm" and segs[1:] == ["_run"] and method == "POST":  # ilm.py: one ILM pass, ``advance`` later
            return {"steps": emu.run_ilm(str(body.get("advance", "0ms")))}
        if head == "docs" and len(segs) == 2 and method == "POST":  # tsdocs.py: sources into an index or data stream
            return {"indices": emu.index_docs(segs[1], list(body.get("docs") or []))}
        if head == "rollup_usage" and method == "POST":
            emu.seed_rollup_usage(body.get("index", "rollup-usage"))
            return {"acknowledged": True}
        raise ControlError(404, f"no control endpoint {method} /_emulator/{'/'.join(segs)}")

    async def _jobs(self, method: str, segs: list[str], body: dict[str, Any]) -> Any:
        emu = self.emu
        if not segs:
            if method == "GET":
                return {j.id: {"state": j.state, "stats": j.stats, "overrides": j.overrides}
                        for j in emu.cluster.jobs.values()}
            if method == "POST":
                timing = {k: body[k] for k in _TIMING if k in body}
                if "count" in body:
                    ids = emu.seed_jobs(int(body["count"]), body.get("prefix", "job-"), body.get("state", "stopped"),
                                        **timing)
                    return {"created": ids}
                emu.add_job(body["id"], body.get("config"), body.get("state", "stopped"), **timing)
                return {"created": [body["id"]]}
            raise ControlError(400, f"method {method} not supported on /_emulator/jobs")
        job_id = segs[0]
        if job_id not in emu.cluster.jobs:
            raise ControlError(404, f"no rollup job [{job_id}]")
        action = segs[1] if len(segs) > 1 else None
        if action is None:
            if method == "GET":
                return emu.get_job(job_id)
            if method == "DELETE":
                emu.oob_delete(job_id)
                return {"acknowledged": True}
        elif method == "POST":
            if action == "_rollup_now":  # rollup_data.py: the complete buckets since the checkpoint
                return {"documents": emu.rollup_now(job_id)}
            if action == "_trigger":
                return {"triggered": emu.trigger(job_id)}
            if action == "_start":
                emu.oob_start(job_id)
                return {"state": emu.job_state(job_id)}
            if action == "_stop":
                emu.oob_stop(job_id)
                return {"state": emu.job_state(job_id)}
            if action == "_state":
                emu.force_state(job_id, body["state"])
                return {"state": emu.job_state(job_id)}
            if action == "_timing":
                emu.set_job_timing(job_id, **{k: body[k] for k in _TIMING if k in body})
                return {"overrides": emu.cluster.jobs[job_id].overrides}
        raise ControlError(400, f"unsupported {method} on /_emulator/jobs/{'/'.join(segs)}")

