"""The Kubernetes side of leader election: the Lease store, leadership Events, identity defaults.

Calls go through lightkube's async client (the operator's client, kube.py) on a client of their
own, each with an HTTP timeout no longer than the renew deadline; the elector also abandons (cancels)
a call at its deadline, so a frozen connection never keeps a lost leader acting. No thread pool. Verbs used: Lease get,
create, update; Event create. Nothing else.
"""

from __future__ import annotations

import asyncio
import logging
import os
import secrets
import socket
import uuid
from pathlib import Path
from typing import Any, Awaitable, cast

import httpx2
from lightkube import AsyncClient, KubeConfig
from lightkube.resources.coordination_v1 import Lease
from lightkube.resources.core_v1 import Event

from rollup_operator.kube.client import KubeError, api_call
from rollup_operator.kube.events import event_body
from rollup_operator.timefmt import rfc3339
from rollup_operator.ha.leader import LeaseConflict, LeaseError

log = logging.getLogger("rollup_operator.ha.leader")

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
    def __init__(self, config: KubeConfig, namespace: str, name: str, *, timeout: float = 10.0,
                 identity: str = ""):
        self.api = AsyncClient(config, namespace=namespace, timeout=httpx2.Timeout(timeout), trust_env=False)
        self.namespace, self.name, self.timeout = namespace, name, timeout
        self.identity = identity

    @property
    def _api(self) -> Any:
        """``api`` for create and replace. Any: lightkube 1.0.1's overloads of both omit ``namespace=`` for a
        NamespacedResource (the implementation takes it), and DictMixin.from_dict is typed to return DictMixin."""
        return cast(Any, self.api)

    async def close(self) -> None:
        await self.api.close()

    def describe(self) -> str:
        return f"leases/{self.name} in namespace {self.namespace}"

    async def _call(self, what: str, coro: Awaitable[Any], *, write: str | None = None, missing_ok: bool = False) -> Any:
        """``kube.api_call``, its errors as the elector's: a 409 is a :class:`LeaseConflict`, every
        other failure (an error answer, httpx's many connection errors) a :class:`LeaseError`."""
        try:
            return await api_call(what, coro, missing_ok=missing_ok, write=write, logger=log, denied="leader election")
        except KubeError as e:
            if e.status == 409:
                raise LeaseConflict(f"{what}: 409: {e.message}") from None
            raise LeaseError(f"{what}: {e.status}: {e.message}") from None
        except asyncio.CancelledError:
            raise
        except Exception as e:  # noqa: BLE001 - httpx's many connection errors
            raise LeaseError(f"{what}: {type(e).__name__}: {e}") from None

    def _lease(self, spec: dict[str, Any], rv: str | None = None) -> Lease:
        meta = {"name": self.name, "namespace": self.namespace, **({"resourceVersion": rv} if rv else {})}
        # cast: lightkube 1.0.1 types DictMixin.from_dict as returning DictMixin, not the class it is called on
        return cast(Lease, Lease.from_dict({"apiVersion": LEASE_API, "kind": "Lease", "metadata": meta, "spec": spec}))

    @staticmethod
    def _rv(obj: Lease) -> str:
        assert obj.metadata is not None and obj.metadata.resourceVersion is not None
        return obj.metadata.resourceVersion

    async def get(self) -> tuple[dict[str, Any], str] | None:
        obj = await self._call(f"GET leases/{self.name}", self.api.get(Lease, self.name, namespace=self.namespace), missing_ok=True)
        if obj is None:
            return None
        return dict(obj.to_dict().get("spec") or {}), self._rv(obj)

    async def create(self, spec: dict[str, Any]) -> str:
        obj = await self._call("POST leases", self._api.create(self._lease(spec), namespace=self.namespace), write="lease")
        return self._rv(obj)

    async def update(self, spec: dict[str, Any], resource_version: str) -> str:
        obj = await self._call(f"PUT leases/{self.name}", self._api.replace(self._lease(spec, resource_version), namespace=self.namespace),
                               write="lease")
        return self._rv(obj)

    async def event(self, type_: str, reason: str, message: str, timeout: float = 1.0) -> None:
        """A core/v1 Event about the Lease. Best effort, bounded in time; never raises."""
        involved = {"apiVersion": LEASE_API, "kind": "Lease", "name": self.name, "namespace": self.namespace}
        ev = Event.from_dict(event_body(f"{self.name}.{uuid.uuid4().hex[:16]}", involved, type_, reason, message,
                                        "rollup-operator", self.identity, rfc3339()))
        try:
            async with asyncio.timeout(timeout):
                await self._call("POST events", self._api.create(ev, namespace=self.namespace), write="event")
        except asyncio.CancelledError:
            raise
        except Exception as e:  # noqa: BLE001 - best effort
            log.warning("could not post leader election event %s: %s", reason, e)
