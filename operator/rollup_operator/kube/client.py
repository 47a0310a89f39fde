"""The few direct Kubernetes API calls the operator makes (kopf does the watching).

On lightkube's async client (see docs/design.md for why): status is written by
server-side apply of the whole status through the status subresource (field manager
``rollup-operator``, forced), finalizers by a merge patch guarded by resourceVersion, events
created and counted (event_recorder.py), Secrets and connections read. No thread pool: every call is a coroutine on the loop.
Knows nothing of Elasticsearch.
"""

from __future__ import annotations

import asyncio
import logging
import os
import socket
from urllib.parse import quote
from typing import Any, Awaitable, Mapping, cast

import httpx2
from lightkube import ApiError, AsyncClient, KubeConfig
from lightkube.config.client_adapter import verify_cluster
from lightkube.generic_resource import create_namespaced_resource
from lightkube.resources.core_v1 import Event, Secret
from lightkube.types import PatchType

from rollup_operator import metrics
from rollup_operator.timefmt import rfc3339
from rollup_operator.kube.names import InvalidName, require
from rollup_operator.kube.transport import AiohttpTransport
from rollup_operator.job.spec import API_VERSION, CONNECTION_KIND, CONNECTION_PLURAL, GROUP, JOB_KIND, JOB_PLURAL, VERSION

log = logging.getLogger(__name__)

#: The field manager of every status the operator applies (``managedFields``).
FIELD_MANAGER = "rollup-operator"

RollupJobResource = create_namespaced_resource(GROUP, VERSION, JOB_KIND, JOB_PLURAL)
ConnectionResource = create_namespaced_resource(GROUP, VERSION, CONNECTION_KIND, CONNECTION_PLURAL)
_RESOURCES = {JOB_KIND: RollupJobResource, CONNECTION_KIND: ConnectionResource}


class KubeError(Exception):
    def __init__(self, status: int, message: str):
        super().__init__(f"{status}: {message}")
        self.status = status
        self.message = message


def load_config(kubeconfig: str | None = None) -> KubeConfig:
    if kubeconfig:
        return KubeConfig.from_file(kubeconfig)
    if os.environ.get("KUBECONFIG"):
        return KubeConfig.from_file(os.environ["KUBECONFIG"].split(os.pathsep)[0])
    return KubeConfig.from_env()


async def api_call(what: str, coro: Awaitable[Any], *, missing_ok: bool = False, write: str | None = None,
                   logger: logging.Logger = log, denied: str = "the operator") -> Any:
    """One lightkube call, the one error mapping of every Kubernetes call the operator makes (this
    module's and lease_store.py's): ``missing_ok``, a 404 returns None; any other answer that is an
    error raises :class:`KubeError` with its code and the API server's message, and a 403 is logged
    as ``RBAC denies <denied>``; ``write``, a success is counted in the writes metric under that kind."""
    try:
        out = await coro
    except ApiError as e:
        code = int(getattr(e.status, "code", 0) or 0)
        if code == 404 and missing_ok:
            return None
        msg = str(getattr(e.status, "message", "") or e)
        if code == 403:
            logger.error("RBAC denies %s: %s: %s", denied, what, msg)
        raise KubeError(code, msg) from None
    if write:
        metrics.K8S_WRITES.labels(kind=write).inc()
    return out


def _name(what: str, namespace: str, name: str) -> str:
    """The one gate of every name that goes into a request path: refused before any request unless
    the namespace and the name are object names (kube_names.py), then percent-encoded as a path
    segment (a no-op for a valid name; nothing can change the path). httpx2 resolves '..' while it
    builds the request, so this must happen here, before lightkube formats the URL."""
    try:
        require("namespace", namespace)
        require(what, name)
    except InvalidName as e:
        raise KubeError(422, str(e)) from None
    return quote(name, safe="")


def _plain(obj: Any) -> dict[str, Any] | None:
    if obj is None:
        return None
    if isinstance(obj, dict):
        return dict(obj.to_dict()) if hasattr(obj, "to_dict") else obj
    return dict(obj.to_dict())


class Kube:
    def __init__(self, config: KubeConfig, *, workers: int = 16, component: str = "rollup-operator"):
        single = config.get()
        ctx = None
        if single is not None and single.cluster.server.startswith("https"):
            assert single.user is not None, "Missing user"  # what lightkube's own client asserts next
            ctx = verify_cluster(single.cluster, single.user, single.abs_file, trust_env=False)
        self._transport = AiohttpTransport(ctx, limit=workers + max(2, workers // 4) + 4)
        self.api = AsyncClient(config, timeout=httpx2.Timeout(30.0), field_manager=FIELD_MANAGER, trust_env=False,
                               transport=self._transport)
        #: Status writes in flight at once (status_writer.py's slots); a writer takes its queued
        #: status only once it holds a slot, so statuses that pile up behind a backlog collapse.
        self.status_workers = workers
        # Events are best effort and must not delay status: their own, smaller share.
        self.event_slots = asyncio.Semaphore(max(2, workers // 4))
        self.component = component
        self.instance = socket.gethostname()

    async def close(self) -> None:
        await self.api.close()
        await self._transport.aclose()

    # --- RollupJob / ElasticsearchConnection -----------------------------------------------

    async def apply_status(self, kind: str, namespace: str, name: str, status: Mapping[str, Any]) -> dict[str, Any] | None:
        """Server-side apply of the whole ``status`` (status subresource, forced); None if the object is gone."""
        name = _name("name", namespace, name)
        res = _RESOURCES[kind]
        body = {"apiVersion": API_VERSION, "kind": kind, "metadata": {"name": name, "namespace": namespace}, "status": dict(status)}
        obj = await api_call(
            f"apply status of {kind} {namespace}/{name}",
            self.api.patch(res.Status, name, body, namespace=namespace, patch_type=PatchType.APPLY,
                           field_manager=FIELD_MANAGER, force=True),
            missing_ok=True, write="status")
        return _plain(obj)

    async def set_finalizers(self, namespace: str, name: str, finalizers: list[str], resource_version: str | None) -> dict[str, Any] | None:
        """Replace metadata.finalizers, guarded by resourceVersion (409 if the object moved on)."""
        name = _name("name", namespace, name)
        meta: dict[str, Any] = {"finalizers": finalizers or None}
        if resource_version:
            meta["resourceVersion"] = resource_version
        obj = await api_call(
            f"patch finalizers of {namespace}/{name}",
            self.api.patch(RollupJobResource, name, {"metadata": meta}, namespace=namespace, patch_type=PatchType.MERGE),
            missing_ok=True, write="finalizer")
        return _plain(obj)

    async def get_connection(self, namespace: str, name: str) -> dict[str, Any] | None:
        """Read one ElasticsearchConnection (a cache miss: a job named it before the watch did)."""
        name = _name("connection name", namespace, name)
        obj = await api_call(f"get {CONNECTION_PLURAL}/{name}", self.api.get(ConnectionResource, name, namespace=namespace), missing_ok=True)
        return _plain(obj)

    # --- Secrets (read only) -------------------------------------------------------------

    async def get_secret(self, namespace: str, name: str) -> dict[str, Any] | None:
        """The Secret object (labels and base64 data, decoded by credentials.py), or None if absent."""
        name = _name("Secret name", namespace, name)
        obj = await api_call(f"get secrets/{name}", self.api.get(Secret, name, namespace=namespace), missing_ok=True)
        return _plain(obj)

    # --- Events --------------------------------------------------------------------------

    async def create_event(self, namespace: str, body: dict[str, Any]) -> dict[str, Any]:
        """Create a core/v1 Event (the event recorder builds it and decides when: event_recorder.py)."""
        async with self.event_slots:
            # cast: lightkube 1.0.1's overload of create() for a NamespacedResource omits namespace= (the
            # implementation takes it), and DictMixin.from_dict is typed to return DictMixin, not the class.
            api = cast(Any, self.api)
            obj = await api_call(f"create event {body.get('reason')}", api.create(Event.from_dict(body), namespace=namespace), write="event")
        return _plain(obj) or {}

    async def patch_event(self, namespace: str, name: str, patch: dict[str, Any]) -> dict[str, Any] | None:
        """Merge-patch an Event the operator posted (count, lastTimestamp); None if it is gone."""
        name = _name("Event name", namespace, name)
        async with self.event_slots:
            obj = await api_call(f"patch event {name}", self.api.patch(Event, name, patch, namespace=namespace, patch_type=PatchType.MERGE),
                                   missing_ok=True, write="event")
        return _plain(obj)

    async def event_once(self, ref: Mapping[str, Any], type_: str, reason: str, message: str, *, name: str) -> None:
        """Post a core/v1 Event under a fixed name, meant to be posted once (not after a restart
        either, while the first still exists: the 409 that follows is expected). Never raises.
        Repeated events go through the event recorder (event_recorder.py) instead."""
        from rollup_operator.kube.events import event_body

        involved = {"apiVersion": API_VERSION, "kind": ref.get("kind", JOB_KIND), "name": ref["name"], "namespace": ref["namespace"]}
        if ref.get("uid"):
            involved["uid"] = ref["uid"]
        body = event_body(name, involved, type_, reason, message, self.component, self.instance, rfc3339())
        try:
            await self.create_event(ref["namespace"], body)
        except asyncio.CancelledError:
            raise
        except KubeError as e:
            if e.status != 409:
                log.warning("could not post event %s for %s/%s: %s", reason, ref["namespace"], ref["name"], e)
        except Exception as e:  # noqa: BLE001 - events are best effort
            log.warning("could not post event %s for %s/%s: %s", reason, ref["namespace"], ref["name"], e)
