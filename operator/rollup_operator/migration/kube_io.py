"""A migration's Kubernetes calls (lightkube, through kube.client's one error mapping): its status
(server-side apply through the status subresource), its finalizer, and the RollupJob it cuts over
(read; desiredState stopped and deletionPolicy by merge patch, so the existing stop and delete paths
act; delete). Knows nothing of Elasticsearch."""

from __future__ import annotations

from typing import Any, Mapping

from lightkube.generic_resource import create_namespaced_resource
from lightkube.types import PatchType

from rollup_operator.job.spec import API_VERSION, GROUP, VERSION
from rollup_operator.kube.client import FIELD_MANAGER, Kube, RollupJobResource, _name, _plain, api_call
from rollup_operator.migration.spec import MIGRATION_KIND, MIGRATION_PLURAL

MigrationResource = create_namespaced_resource(GROUP, VERSION, MIGRATION_KIND, MIGRATION_PLURAL)


async def apply_status(kube: Kube, namespace: str, name: str, status: Mapping[str, Any]) -> dict[str, Any] | None:
    n = _name("name", namespace, name)
    body = {"apiVersion": API_VERSION, "kind": MIGRATION_KIND, "metadata": {"name": n, "namespace": namespace},
            "status": dict(status)}
    obj = await api_call(f"apply status of {MIGRATION_KIND} {namespace}/{name}",
                         kube.api.patch(MigrationResource.Status, n, body, namespace=namespace, patch_type=PatchType.APPLY,
                                        field_manager=FIELD_MANAGER, force=True), missing_ok=True, write="status")
    return _plain(obj)


async def set_finalizers(kube: Kube, namespace: str, name: str, finalizers: list[str]) -> dict[str, Any] | None:
    n = _name("name", namespace, name)
    obj = await api_call(f"patch finalizers of {MIGRATION_KIND} {namespace}/{name}",
                         kube.api.patch(MigrationResource, n, {"metadata": {"finalizers": finalizers or None}},
                                        namespace=namespace, patch_type=PatchType.MERGE), missing_ok=True, write="finalizer")
    return _plain(obj)


async def get_rollupjob(kube: Kube, namespace: str, name: str) -> dict[str, Any]:
    """The RollupJob, {} if it does not exist."""
    n = _name("name", namespace, name)
    obj = await api_call(f"get rollupjobs/{name}", kube.api.get(RollupJobResource, n, namespace=namespace), missing_ok=True)
    return _plain(obj) or {}


async def patch_rollupjob(kube: Kube, namespace: str, name: str, spec: Mapping[str, Any]) -> None:
    n = _name("name", namespace, name)
    await api_call(f"patch rollupjobs/{name}", kube.api.patch(RollupJobResource, n, {"spec": dict(spec)}, namespace=namespace,
                                                             patch_type=PatchType.MERGE), missing_ok=True, write="spec")


async def delete_rollupjob(kube: Kube, namespace: str, name: str) -> None:
    n = _name("name", namespace, name)
    await api_call(f"delete rollupjobs/{name}", kube.api.delete(RollupJobResource, n, namespace=namespace), missing_ok=True)
