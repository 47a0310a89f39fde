"""One observation or one action of a migration's pass, as phases.decide asks for it: the
Elasticsearch reads and writes (engine.py) and the Kubernetes ones (kube_io.py)."""

from __future__ import annotations

import logging
import time
from dataclasses import replace
from typing import Any, Mapping

from rollup_operator.engine.connection import Connection
from rollup_operator.kube.client import Kube
from rollup_operator.migration import engine, kube_io, phases
from rollup_operator.migration.spec import FINALIZER, MigrationSpec

log = logging.getLogger("rollup_operator")


def iso_ms(ms: int) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(ms // 1000)) + f".{ms % 1000:03d}Z"


async def observe(kube: Kube, what: str, es: Any, conn: Connection, spec: MigrationSpec, job_id: str,
                   plan: Mapping[str, Any] | None, o: phases.Observed, extra: dict[str, Any]) -> phases.Observed:
    if what == "job":
        return replace(o, job=await engine.read_job(es, job_id))
    if what == "version":
        n = (conn.info.version if conn.info else None) or "0.0"
        parts = (n.split("-")[0].split(".") + ["0"])[:2]
        return replace(o, version=(int(parts[0]), int(parts[1])))
    if what == "rollup_jobs":
        return replace(o, rollup_jobs=await engine.count_jobs(es))
    if what == "rollupjob":
        return replace(o, rollupjob=await kube_io.get_rollupjob(kube, spec.namespace, str(spec.job_ref)))
    assert plan is not None
    if what == "simulate":
        return replace(o, simulated=await engine.simulate(es, plan["indexTemplate"], list(plan.get("dimensions") or [])))
    if what == "provisioning":
        return replace(o, provisioning=await engine.provisioning(es, plan["resourceName"], spec.target))
    config = (o.job or {}).get("config") or {}
    if what == "coverage":
        cov = await engine.coverage(es, plan, config, spec.target)
        extra["coverage"] = {k: ({"start": iso_ms(v[0]), "end": iso_ms(v[1])} if isinstance(v, tuple) else v)
                             for k, v in cov.items()}
        return replace(o, coverage=cov)
    if what == "verification":
        ver = await engine.verification(es, plan, config, dict(o.coverage or {}), spec.tolerance, spec.max_differences,
                                        iso_ms)
        extra["verification"] = ver
        return replace(o, verification=ver)
    raise ValueError(what)

async def act(kube: Kube, action: str, arg: Any, es: Any, spec: MigrationSpec, job_id: str,
               plan: Mapping[str, Any] | None) -> str | None:
    log.info("migration %s: %s", spec.ref, action)
    if action == "add_finalizer":
        await kube_io.set_finalizers(kube, spec.namespace, spec.name, [*spec.finalizers, FINALIZER])
        return None
    if action == "stop_rollupjob":
        await kube_io.patch_rollupjob(kube, spec.namespace, arg, {"desiredState": "stopped"})
        return None
    if action == "rollupjob_deletion_policy":
        await kube_io.patch_rollupjob(kube, spec.namespace, arg, {"deletionPolicy": "Delete"})
        return None
    if action == "delete_rollupjob":
        await kube_io.delete_rollupjob(kube, spec.namespace, arg)
        return None
    if action == "stop_job":
        await engine.stop_job(es, job_id)
        return None
    if action == "delete_job":
        await engine.delete_job(es, job_id)
        return None
    assert plan is not None
    return await engine.act(es, action, arg, plan["resourceName"])
