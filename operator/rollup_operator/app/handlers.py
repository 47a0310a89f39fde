"""kopf registrations, nothing else: watch events go to the controller as they come.

The operator uses kopf for what it is best at (watching, reconnecting, liveness, shutdown) and
keeps no per-object state in Kubernetes annotations: ``on.event`` handlers are stateless, so a
status write or a retry never costs an extra annotation patch.
"""

from __future__ import annotations

import contextvars
import dataclasses
import os
from typing import Any

import kopf

from rollup_operator.app.controller import Controller
from rollup_operator.job.spec import CONNECTION_PLURAL, GROUP, JOB_PLURAL, VERSION
from rollup_operator.migration.runner import Migrations
from rollup_operator.migration.spec import MIGRATION_PLURAL


def in_cluster_server() -> str | None:
    """The API server as the kubelet tells a Pod (KUBERNETES_SERVICE_HOST/PORT), as client-go's
    in-cluster config reads it. kopf's own service-account login names kubernetes.default.svc,
    which needs cluster DNS; the operator's writes already use the address (kube.load_config)."""
    host = os.environ.get("KUBERNETES_SERVICE_HOST")
    port = os.environ.get("KUBERNETES_SERVICE_PORT", "443")
    if not host:
        return None
    return f"https://[{host}]:{port}" if ":" in host else f"https://{host}:{port}"


def build_registry(controller: Controller) -> kopf.OperatorRegistry:
    registry = kopf.OperatorRegistry()

    @kopf.on.login(registry=registry)
    def login(**kwargs: Any) -> kopf.ConnectionInfo | None:
        # The same credentials as the operator's own writes (kube.load_config): $KUBECONFIG, else
        # the in-cluster service account, else ~/.kube/config.
        if os.environ.get("KUBECONFIG"):
            return kopf.login_with_kubeconfig(**kwargs)
        info = kopf.login_with_service_account(**kwargs)
        if info is None:
            return kopf.login_with_kubeconfig(**kwargs)
        return dataclasses.replace(info, server=in_cluster_server() or info.server)

    # The controller runs outside kopf's context: kopf sets context variables for each handler call
    # (its cause, and with it the whole watched body), and every task or timer started inside that
    # call copies them. A job's pass, requeue timer and status writes would each keep the body of
    # the watch event that started them alive; a thousand jobs flipped at once kept ~25 MiB so.
    @kopf.on.event(GROUP, VERSION, CONNECTION_PLURAL, registry=registry)
    async def connection_event(event: kopf.RawEvent, **_: Any) -> None:
        contextvars.Context().run(controller.on_connection_event, event.get("type"), dict(event["object"]))

    @kopf.on.event(GROUP, VERSION, JOB_PLURAL, registry=registry)
    async def job_event(event: kopf.RawEvent, **_: Any) -> None:
        contextvars.Context().run(controller.on_job_event, event.get("type"), dict(event["object"]))

    # RollupMigrations (migration/runner.py): their own task each, on the controller's connections.
    migrations = Migrations(controller.kube, controller.connection, controller.store.owner_of)

    @kopf.on.event(GROUP, VERSION, MIGRATION_PLURAL, registry=registry)
    async def migration_event(event: kopf.RawEvent, **_: Any) -> None:
        contextvars.Context().run(migrations.on_event, event.get("type"), dict(event["object"]))

    @kopf.on.cleanup(registry=registry)
    async def cleanup(**_: Any) -> None:
        await migrations.close()
        await controller.close()

    return registry
