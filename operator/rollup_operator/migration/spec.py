"""A RollupMigration's spec as the controller reads it (the CRD's schema and CEL rules check it at
admission; this only reads, with the CRD's defaults for an object admitted without them). Pure."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any, Mapping

from rollup_operator.job.spec import job_id_problem
from rollup_operator.kube.names import InvalidName, require

APPROVE_ANNOTATION = "rollup.esops.dev/approve"
APPROVE_CUTOVER_ANNOTATION = "rollup.esops.dev/approve-cutover"
MIGRATION_KIND, MIGRATION_PLURAL = "RollupMigration", "rollupmigrations"
FINALIZER = "rollup.esops.dev/migration-cleanup"


@dataclass(frozen=True)
class MigrationSpec:
    namespace: str
    name: str
    uid: str
    generation: int
    target: str
    job_ref: str | None = None  # a RollupJob in this namespace
    job_id: str | None = None  # a server job id (with connection_ref)
    connection_ref: str | None = None
    dimensions: tuple[str, ...] | None = None
    metric_types: Mapping[str, str] = field(default_factory=dict)
    fixed_interval: str | None = None
    after: str | None = None
    accept: frozenset[str] = frozenset()
    approved: bool = False
    cutover_approved: bool = False
    job_policy: str = "KeepStopped"  # KeepStopped | Delete
    allow_last_job: bool = False
    tolerance: float = 0.001
    max_differences: int = 20
    cleanup: str = "Retain"  # Retain | Delete
    deleting: bool = False
    finalizers: tuple[str, ...] = ()

    @property
    def ref(self) -> str:
        return f"{self.namespace}/{self.name}"


#: The CRD's pattern of spec.targetDataStream (the template and the ILM policy are named after the job).
_DATA_STREAM = re.compile(r"^[a-z0-9][a-z0-9._-]*$")


def spec_problem(spec: MigrationSpec) -> str | None:
    """Why no request may be made for this spec, or None. The CRD refuses all of these at admission;
    this is the operator's own guard (an object stored before the schema had the rule, or a CRD
    installed without it): a name that is not an object name never reaches a Kubernetes path, a job
    id that cannot address one job never reaches an Elasticsearch path. The message names the field,
    never the value."""
    try:
        for what, name in (("spec.jobRef.name", spec.job_ref), ("spec.connectionRef.name", spec.connection_ref)):
            if name is not None:
                require(what, name)
    except InvalidName as e:
        return str(e)
    why = job_id_problem(spec.job_id) if spec.job_id is not None else None
    if why is not None:
        return f"spec.jobId {why}"
    if not _DATA_STREAM.match(spec.target) or len(spec.target) > 255:
        return "spec.targetDataStream is not a valid data stream name: lowercase letters, digits, '.', '_' and '-', starting with a letter or digit"
    return None


def _true(value: Any) -> bool:
    return str(value).strip().lower() == "true"


def migration_spec(body: Mapping[str, Any]) -> MigrationSpec:
    meta = body.get("metadata") or {}
    spec = body.get("spec") or {}
    ann = meta.get("annotations") or {}
    cut = spec.get("cutOver") or {}
    ver = spec.get("verification") or {}
    dims = spec.get("dimensions")
    return MigrationSpec(
        namespace=meta.get("namespace", ""), name=meta.get("name", ""), uid=meta.get("uid", ""),
        generation=int(meta.get("generation") or 0), target=str(spec.get("targetDataStream") or ""),
        job_ref=(spec.get("jobRef") or {}).get("name"), job_id=spec.get("jobId"),
        connection_ref=(spec.get("connectionRef") or {}).get("name"),
        dimensions=tuple(dims) if dims else None, metric_types=dict(spec.get("metricTypes") or {}),
        fixed_interval=spec.get("fixedInterval"), after=spec.get("after"),
        accept=frozenset(spec.get("acceptBlockers") or ()),
        approved=bool(spec.get("approved")) or _true(ann.get(APPROVE_ANNOTATION)),
        cutover_approved=bool(cut.get("approved")) or _true(ann.get(APPROVE_CUTOVER_ANNOTATION)),
        job_policy=str(cut.get("jobPolicy") or "KeepStopped"), allow_last_job=bool(cut.get("allowRemovingLastRollupJob")),
        tolerance=float(ver.get("tolerance") or 0.001), max_differences=int(ver.get("maxDifferences") or 20),
        cleanup=str(spec.get("cleanupPolicy") or "Retain"), deleting=bool(meta.get("deletionTimestamp")),
        finalizers=tuple(meta.get("finalizers") or ()),
    )
