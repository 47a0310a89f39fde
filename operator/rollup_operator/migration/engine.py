"""A migration's calls to Elasticsearch, on the connection's official AsyncElasticsearch client.
Thin: each function is one or two calls and the reading of their answers; decisions are in phases.py.
Errors propagate (elasticsearch.ApiError, transport errors); the runner classifies them."""

from __future__ import annotations

from typing import Any, Mapping

import elasticsearch
from elasticsearch import AsyncElasticsearch

from rollup_operator.migration import verify
from rollup_operator.migration.plan import interval_ms


async def read_job(es: AsyncElasticsearch, job_id: str) -> dict[str, Any]:
    """{"config", "state"} of the job, {} if it does not exist."""
    try:
        body = (await es.rollup.get_jobs(id=job_id)).body
    except elasticsearch.NotFoundError:
        return {}
    for j in body.get("jobs") or []:
        if (j.get("config") or {}).get("id") == job_id:
            return {"config": j["config"], "state": (j.get("status") or {}).get("job_state")}
    return {}


async def count_jobs(es: AsyncElasticsearch) -> int:
    return len((await es.rollup.get_jobs(id="_all")).body.get("jobs") or [])


async def simulate(es: AsyncElasticsearch, template: Mapping[str, Any], dims: list[str]) -> dict[str, Any]:
    """POST _index_template/_simulate with the template: does it give a time series index with the dimensions?"""
    try:
        got = (await es.indices.simulate_template(body=dict(template))).body
    except elasticsearch.BadRequestError as e:
        return {"ok": False, "message": f"Elasticsearch refused the index template in simulation: {_reason(e)}"}
    settings = (got.get("template") or {}).get("settings") or {}
    mode = (settings.get("index") or {}).get("mode") or settings.get("index.mode")
    props = ((got.get("template") or {}).get("mappings") or {}).get("properties") or {}
    missing = [d for d in dims if not (props.get(d) or {}).get("time_series_dimension")]
    if mode != "time_series" or missing:
        why = f"index.mode is {mode!r}" if mode != "time_series" else f"no time_series_dimension mapping for {', '.join(missing)}"
        return {"ok": False, "message": f"the simulated index template does not give a time series index: {why}"}
    over = [o.get("name") for o in got.get("overlapping") or []]
    return {"ok": True, "message": "simulated" + (f"; supersedes {', '.join(over)}" if over else ""), "overlapping": over}


def _reason(e: elasticsearch.ApiError) -> str:
    err = (e.body or {}).get("error") if isinstance(e.body, dict) else None
    return str((err or {}).get("reason") if isinstance(err, dict) else e.message)[:1024]


async def provisioning(es: AsyncElasticsearch, name: str, target: str) -> dict[str, Any]:
    """The template and policy (their bodies, or None) and the data stream's write index policy."""
    out: dict[str, Any] = {"template": None, "policy": None, "dataStream": None}
    try:
        got = (await es.indices.get_index_template(name=name)).body.get("index_templates") or []
        out["template"] = got[0]["index_template"] if got else None
    except elasticsearch.NotFoundError:
        pass
    try:
        out["policy"] = (await es.ilm.get_lifecycle(name=name)).body.get(name, {}).get("policy")
    except elasticsearch.NotFoundError:
        pass
    streams: list[dict[str, Any]] = []
    try:
        if target:
            streams = (await es.indices.get_data_stream(name=target)).body.get("data_streams") or []
    except elasticsearch.NotFoundError:
        pass
    if streams:
        indices = [i["index_name"] for i in streams[0].get("indices") or []]
        write = indices[-1] if indices else None
        policy = None
        if write:
            settings = ((await es.indices.get(index=write)).body.get(write) or {}).get("settings") or {}
            policy = ((settings.get("index") or {}).get("lifecycle") or {}).get("name")
        out["dataStream"] = {"indices": indices, "writeIndex": write, "writeIndexPolicy": policy}
    return out


async def act(es: AsyncElasticsearch, action: str, arg: Any, name: str) -> str:
    """One provisioning or cut-over action on the server; returns what it did, for status."""
    if action == "put_policy":
        await es.ilm.put_lifecycle(name=name, policy=arg["policy"])
        return f"IlmPolicy/{name}"
    if action == "put_template":
        await es.indices.put_index_template(name=name, body=dict(arg))
        return f"IndexTemplate/{name}"
    if action == "create_data_stream":
        await es.indices.create_data_stream(name=arg)
        return f"DataStream/{arg}"
    if action == "rollover":
        res = (await es.indices.rollover(alias=arg)).body
        return f"BackingIndex/{res.get('new_index')}"
    raise ValueError(action)


async def downsampled_indices(es: AsyncElasticsearch, target: str) -> list[str]:
    try:
        streams = (await es.indices.get_data_stream(name=target)).body.get("data_streams") or []
    except elasticsearch.NotFoundError:
        return []
    names = [i["index_name"] for s in streams for i in s.get("indices") or []]
    if not names:
        return []
    got = (await es.indices.get(index=",".join(names))).body
    return [n for n in names if (((got.get(n) or {}).get("settings") or {}).get("index") or {}).get("downsample", {}).get("status") == "success"]


async def coverage(es: AsyncElasticsearch, plan: Mapping[str, Any], config: Mapping[str, Any], target: str) -> dict[str, Any]:
    dh = (config.get("groups") or {}).get("date_histogram") or {}
    field, job_iv = dh.get("field", "@timestamp"), dh.get("fixed_interval") or plan["fixedInterval"]
    rolled = (await es.rollup.rollup_search(index=config["rollup_index"], size=0, aggregations={
        "t": {"date_histogram": {"field": field, "fixed_interval": job_iv, "min_doc_count": 1}}})).body
    keys = [int(b["key"]) for b in ((rolled.get("aggregations") or {}).get("t") or {}).get("buckets") or [] if b.get("doc_count")]
    down = await downsampled_indices(es, target)
    lo = hi = None
    if down:
        got = (await es.search(index=",".join(down), size=0, aggregations={
            "lo": {"min": {"field": "@timestamp"}}, "hi": {"max": {"field": "@timestamp"}}})).body.get("aggregations") or {}
        lo, hi = (got.get("lo") or {}).get("value"), (got.get("hi") or {}).get("value")
    cov = verify.coverage(keys, interval_ms(job_iv) or 1, None if lo is None else int(lo), None if hi is None else int(hi),
                          interval_ms(plan["fixedInterval"]) or 1)
    return {**cov, "downsampledIndices": down}


async def verification(es: AsyncElasticsearch, plan: Mapping[str, Any], config: Mapping[str, Any],
                       cov: Mapping[str, Any], tolerance: float, limit: int, iso: Any) -> dict[str, Any]:
    dims, metrics = verify.questions(plan, config)
    field = ((config.get("groups") or {}).get("date_histogram") or {}).get("field", "@timestamp")
    window = (int(cov["overlap"][0]), int(cov["overlap"][1]))
    r_body = verify.request(field, plan["fixedInterval"], dims, metrics, window)
    d_body = verify.request("@timestamp", plan["fixedInterval"], dims, metrics, window)
    rolled = (await es.rollup.rollup_search(index=config["rollup_index"], body=r_body)).body
    down = (await es.search(index=",".join(cov["downsampledIndices"]), body=d_body)).body
    out = verify.compare(verify.flatten(rolled, dims), verify.flatten(down, dims), tolerance, limit, iso)
    return {**out, "window": {"start": iso(window[0]), "end": iso(window[1])}, "interval": plan["fixedInterval"],
            "dimensions": dims, "metrics": [f"{f}.{k}" for f, k in metrics] + ["doc_count"]}


async def stop_job(es: AsyncElasticsearch, job_id: str) -> None:
    await es.rollup.stop_job(id=job_id, wait_for_completion=True, timeout="30s")


async def delete_job(es: AsyncElasticsearch, job_id: str) -> None:
    try:
        await es.rollup.delete_job(id=job_id)
    except elasticsearch.NotFoundError:
        pass


async def remove_created(es: AsyncElasticsearch, name: str, uid: str) -> list[str]:
    """Delete the index template and ILM policy if this migration owns them; what was kept and why."""
    notes: list[str] = []
    prov = await provisioning(es, name, "")
    if prov["template"] is not None and ((prov["template"].get("_meta") or {}).get("migration_uid")) == uid:
        await es.indices.delete_index_template(name=name)
    if prov["policy"] is not None and ((prov["policy"].get("_meta") or {}).get("migration_uid")) == uid:
        try:
            await es.ilm.delete_lifecycle(name=name)
        except elasticsearch.BadRequestError as e:
            notes.append(f"ILM policy {name} kept: {_reason(e)}")
    return notes
