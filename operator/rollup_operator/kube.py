"""The few direct Kubernetes API calls the operator makes (kopf does the watching).

pykube-ng is synchronous; calls run in a small, bounded thread pool so that a burst of status
writes (a thousand jobs stopping at once) neither blocks the event loop nor floods the API server.
Knows nothing of Elasticsearch.
"""

from __future__ import annotations

import asyncio
import base64
import concurrent.futures
import datetime as dt
import json
import logging
import os
import socket
import uuid
from typing import Any, Mapping

import pykube

from . import metrics
from .model import API_VERSION, CONNECTION_PLURAL, JOB_KIND, JOB_PLURAL

log = logging.getLogger(__name__)

MERGE = {"Content-Type": "application/merge-patch+json"}


def resource_version(meta: Mapping[str, Any]) -> int:
    """metadata.resourceVersion as a number (0 if absent), to tell newer from older copies."""
    try:
        return int(meta.get("resourceVersion") or 0)
    except ValueError:
        return 0


class KubeError(Exception):
    def __init__(self, status: int, message: str):
        super().__init__(f"{status}: {message}")
        self.status = status
        self.message = message


def load_config(kubeconfig: str | None = None) -> pykube.KubeConfig:
    if kubeconfig:
        return pykube.KubeConfig.from_file(kubeconfig)
    if os.environ.get("KUBECONFIG"):
        return pykube.KubeConfig.from_file(os.environ["KUBECONFIG"].split(os.pathsep)[0])
    return pykube.KubeConfig.from_env()


class Kube:
    def __init__(self, config: pykube.KubeConfig, *, workers: int = 16, component: str = "rollup-operator"):
        # One connection per writer thread (requests' default pool keeps only 10).
        adapter = pykube.http.KubernetesHTTPAdapter(config, pool_connections=4, pool_maxsize=workers)
        self.api = pykube.HTTPClient(config, timeout=30, http_adapter=adapter)
        #: Status and finalizer writes in flight; a job's writer takes its queued patches only
        #: once it holds a slot, so patches that pile up behind a backlog are merged.
        self.status_slots = asyncio.Semaphore(workers)
        # Events are best effort and must not delay status: their own, smaller pool.
        self._event_pool = concurrent.futures.ThreadPoolExecutor(max_workers=max(2, workers // 4), thread_name_prefix="kube-event")
        self._pool = concurrent.futures.ThreadPoolExecutor(max_workers=workers, thread_name_prefix="kube")
        self.component = component
        self.instance = socket.gethostname()

    def close(self) -> None:
        self._pool.shutdown(wait=False, cancel_futures=True)
        self._event_pool.shutdown(wait=False, cancel_futures=True)

    async def _call(self, fn, *args) -> Any:
        return await asyncio.get_running_loop().run_in_executor(self._pool, fn, *args)

    def _request(self, method: str, *, missing_ok: bool = False, write: str | None = None, **kw) -> Any:
        """One API call. ``missing_ok``: a 404 returns None. ``write``: count it in the writes metric."""
        resp = getattr(self.api, method)(**kw)
        if resp.status_code >= 400:
            if resp.status_code == 404 and missing_ok:
                return None
            try:
                msg = resp.json().get("message", resp.text)
            except ValueError:
                msg = resp.text
            if resp.status_code == 403:
                log.error("RBAC denies the operator: %s %s: %s", method.upper(), kw.get("url"), msg)
            raise KubeError(resp.status_code, msg)
        if write:
            metrics.K8S_WRITES.labels(kind=write).inc()
        return resp.json() if resp.content else None

    async def _api(self, method: str, **kw) -> Any:
        return await self._call(lambda: self._request(method, **kw))

    # --- RollupJob / ElasticsearchConnection -----------------------------------------------

    async def patch_status(self, plural: str, namespace: str, name: str, status_patch: Mapping) -> dict | None:
        """Merge-patch ``status`` through the status subresource; returns the object, None if gone."""
        return await self._api(
            "patch", missing_ok=True, write="status", version=API_VERSION, namespace=namespace,
            url=f"{plural}/{name}/status", headers=MERGE, data=json.dumps({"status": status_patch}),
        )

    async def patch_job_status(self, namespace: str, name: str, status_patch: Mapping) -> dict | None:
        return await self.patch_status(JOB_PLURAL, namespace, name, status_patch)

    async def patch_connection_status(self, namespace: str, name: str, status_patch: Mapping) -> dict | None:
        return await self.patch_status(CONNECTION_PLURAL, namespace, name, status_patch)

    async def set_finalizers(self, namespace: str, name: str, finalizers: list[str], resource_version: str | None) -> dict | None:
        """Replace metadata.finalizers, guarded by resourceVersion (409 if the object moved on)."""
        meta: dict[str, Any] = {"finalizers": finalizers or None}
        if resource_version:
            meta["resourceVersion"] = resource_version
        return await self._api(
            "patch", missing_ok=True, write="finalizer", version=API_VERSION, namespace=namespace,
            url=f"{JOB_PLURAL}/{name}", headers=MERGE, data=json.dumps({"metadata": meta}),
        )

    async def get_connection(self, namespace: str, name: str) -> dict | None:
        """Read one ElasticsearchConnection (a cache miss: a job named it before the watch did)."""
        return await self._api("get", missing_ok=True, version=API_VERSION, namespace=namespace, url=f"{CONNECTION_PLURAL}/{name}")

    # --- Secrets (read only) -------------------------------------------------------------

    async def read_secret(self, namespace: str, name: str) -> dict[str, bytes] | None:
        """The decoded data of a Secret, or None if it does not exist."""
        obj = await self._api("get", missing_ok=True, version="v1", namespace=namespace, url=f"secrets/{name}")
        if obj is None:
            return None
        data = {k: base64.b64decode(v) for k, v in (obj.get("data") or {}).items()}
        data.update({k: v.encode() for k, v in (obj.get("stringData") or {}).items()})
        return data

    async def get_secret(self, namespace: str, name: str) -> dict | None:
        """The Secret object (labels and base64 data, decoded by credentials.py), or None if absent."""
        return await self._api("get", missing_ok=True, version="v1", namespace=namespace, url=f"secrets/{name}")

    # --- Events --------------------------------------------------------------------------

    async def event(self, ref: Mapping[str, Any], type_: str, reason: str, message: str, *, name: str | None = None) -> None:
        """Post a core/v1 Event about a RollupJob or ElasticsearchConnection. Never raises.

        ``name``: a fixed Event name, so that an Event meant to be posted once is not posted again
        (after a restart, say) while the first still exists; the 409 that follows is expected."""
        now = dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
        body = {
            "apiVersion": "v1",
            "kind": "Event",
            "metadata": {"name": name or f"{ref['name']}.{uuid.uuid4().hex[:16]}", "namespace": ref["namespace"]},
            "involvedObject": {
                "apiVersion": API_VERSION,
                "kind": ref.get("kind", JOB_KIND),
                "name": ref["name"],
                "namespace": ref["namespace"],
                "uid": ref.get("uid"),
            },
            "type": type_,
            "reason": reason,
            "message": message[:1024],
            "source": {"component": self.component},
            "reportingComponent": self.component,
            "reportingInstance": self.instance,
            "firstTimestamp": now,
            "lastTimestamp": now,
            "count": 1,
        }

        try:
            await asyncio.get_running_loop().run_in_executor(self._event_pool, lambda: self._request(
                "post", write="event", version="v1", namespace=ref["namespace"], url="events", data=json.dumps(body)))
        except KubeError as e:
            if not (name and e.status == 409):
                log.warning("could not post event %s for %s/%s: %s", reason, ref["namespace"], ref["name"], e)
        except Exception as e:  # noqa: BLE001 - events are best effort
            log.warning("could not post event %s for %s/%s: %s", reason, ref["namespace"], ref["name"], e)
