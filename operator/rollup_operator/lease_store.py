"""The Kubernetes side of leader election: the Lease store, leadership Events, identity defaults.

Calls go through pykube (the operator's client) on a small thread pool of their own, each with
an HTTP timeout no longer than the renew deadline; the elector also abandons a call at its
deadline, so a frozen connection never keeps a lost leader acting. Verbs used: Lease get,
create, update; Event create. Nothing else.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import datetime as dt
import json
import logging
import os
import secrets
import socket
import uuid
from pathlib import Path

import pykube

from . import metrics
from .leader import LeaseConflict, LeaseError

log = logging.getLogger("rollup_operator.leader")

LEASE_API = "coordination.k8s.io/v1"
SA_NAMESPACE_FILE = Path("/var/run/secrets/kubernetes.io/serviceaccount/namespace")
DEFAULT_NAMESPACE = "rollup-operator-system"


def default_identity() -> str:
    """$POD_NAME (set from the downward API), else ``<hostname>_<random hex>``."""
    return os.environ.get("POD_NAME") or f"{socket.gethostname()}_{secrets.token_hex(6)}"


def default_namespace() -> str:
    """$POD_NAMESPACE, else the service account's namespace file, else rollup-operator-system."""
    if os.environ.get("POD_NAMESPACE"):
        return os.environ["POD_NAMESPACE"]
    try:
        ns = SA_NAMESPACE_FILE.read_text().strip()
        if ns:
            return ns
    except OSError:
        pass
    return DEFAULT_NAMESPACE


class KubeLeaseStore:
    def __init__(self, config: pykube.KubeConfig, namespace: str, name: str, *, timeout: float = 10.0,
                 identity: str = "", user_agent: str | None = None):
        self.api = pykube.HTTPClient(config, timeout=timeout)
        if user_agent:
            self.api.session.headers["User-Agent"] = user_agent
        self.namespace, self.name, self.timeout = namespace, name, timeout
        self.identity = identity
        self._pool = concurrent.futures.ThreadPoolExecutor(max_workers=3, thread_name_prefix="lease")

    def close(self) -> None:
        self._pool.shutdown(wait=False, cancel_futures=True)

    def describe(self) -> str:
        return f"leases/{self.name} in namespace {self.namespace}"

    def _call(self, method: str, version: str, url: str, body: dict | None = None, *, write: str | None = None):
        try:
            resp = getattr(self.api, method)(version=version, namespace=self.namespace,
                                             url=url, timeout=self.timeout,
                                             **({"data": json.dumps(body)} if body is not None else {}))
        except Exception as e:  # noqa: BLE001 - requests' many connection errors
            raise LeaseError(f"{method.upper()} {url}: {type(e).__name__}: {e}") from None
        if write and resp.status_code < 300:
            metrics.K8S_WRITES.labels(kind=write).inc()
        if resp.status_code == 404 and method == "get":
            return None
        if resp.status_code == 409 and method in ("put", "post"):
            raise LeaseConflict(f"{method.upper()} {url}: {resp.status_code}")
        if resp.status_code >= 400:
            try:
                msg = resp.json().get("message", resp.text)
            except ValueError:
                msg = resp.text
            if resp.status_code == 403:
                log.error("RBAC denies leader election: %s %s: %s", method.upper(), url, msg)
            raise LeaseError(f"{method.upper()} {url}: {resp.status_code}: {msg}")
        return resp.json()

    async def _run(self, *args, **kw):
        return await asyncio.get_running_loop().run_in_executor(self._pool, lambda: self._call(*args, **kw))

    def _body(self, spec: dict, rv: str | None = None) -> dict:
        meta = {"name": self.name, "namespace": self.namespace, **({"resourceVersion": rv} if rv else {})}
        return {"apiVersion": LEASE_API, "kind": "Lease", "metadata": meta, "spec": spec}

    async def get(self) -> tuple[dict, str] | None:
        obj = await self._run("get", LEASE_API, f"leases/{self.name}")
        if obj is None:
            return None
        return dict(obj.get("spec") or {}), obj["metadata"]["resourceVersion"]

    async def create(self, spec: dict) -> str:
        obj = await self._run("post", LEASE_API, "leases", self._body(spec), write="lease")
        return obj["metadata"]["resourceVersion"]

    async def update(self, spec: dict, resource_version: str) -> str:
        obj = await self._run("put", LEASE_API, f"leases/{self.name}", self._body(spec, resource_version), write="lease")
        return obj["metadata"]["resourceVersion"]

    async def event(self, type_: str, reason: str, message: str, timeout: float = 1.0) -> None:
        """A core/v1 Event about the Lease. Best effort, bounded in time; never raises."""
        now = dt.datetime.now(dt.timezone.utc)
        body = {
            "apiVersion": "v1", "kind": "Event",
            "metadata": {"name": f"{self.name}.{uuid.uuid4().hex[:16]}", "namespace": self.namespace},
            "involvedObject": {"apiVersion": LEASE_API, "kind": "Lease", "name": self.name, "namespace": self.namespace},
            "type": type_, "reason": reason, "message": message[:1024],
            "source": {"component": "rollup-operator"},
            "reportingComponent": "rollup-operator", "reportingInstance": self.identity[:128],
            "firstTimestamp": now.strftime("%Y-%m-%dT%H:%M:%SZ"), "lastTimestamp": now.strftime("%Y-%m-%dT%H:%M:%SZ"),
            "count": 1,
        }
        try:
            async with asyncio.timeout(timeout):
                await self._run("post", "v1", "events", body, write="event")
        except Exception as e:  # noqa: BLE001 - best effort
            log.warning("could not post leader election event %s: %s", reason, e)
