"""kopf registrations, nothing else: watch events go to the controller as they come.

The operator uses kopf for what it is best at (watching, reconnecting, liveness, shutdown) and
keeps no per-object state in Kubernetes annotations: ``on.event`` handlers are stateless, so a
status write or a retry never costs an extra annotation patch.
"""

from __future__ import annotations

import os
from typing import Any

import kopf

from .controller import Controller
from .model import CONNECTION_PLURAL, GROUP, JOB_PLURAL, VERSION


def build_registry(controller: Controller) -> kopf.OperatorRegistry:
    registry = kopf.OperatorRegistry()

    @kopf.on.login(registry=registry)
    def login(**kwargs: Any) -> kopf.ConnectionInfo | None:
        # The same credentials as the operator's own writes (kube.load_config): $KUBECONFIG, else
        # the in-cluster service account, else ~/.kube/config.
        if os.environ.get("KUBECONFIG"):
            return kopf.login_with_kubeconfig(**kwargs)
        return kopf.login_with_service_account(**kwargs) or kopf.login_with_kubeconfig(**kwargs)

    @kopf.on.event(GROUP, VERSION, CONNECTION_PLURAL, registry=registry)
    async def connection_event(event: dict[str, Any], **_: Any) -> None:
        controller.on_connection_event(event.get("type"), dict(event["object"]))

    @kopf.on.event(GROUP, VERSION, JOB_PLURAL, registry=registry)
    async def job_event(event: dict[str, Any], **_: Any) -> None:
        controller.on_job_event(event.get("type"), dict(event["object"]))

    @kopf.on.cleanup(registry=registry)
    async def cleanup(**_: Any) -> None:
        await controller.close()

    return registry
