"""Fixtures of the cluster suite (test_e2e_cluster.py): one cluster per provider for the module.

``E2E_PROVIDERS`` (default ``local-node,kind``) chooses the providers; each skips with its reason
where it cannot run (local-node: not root, or missing packages are an error, not a skip; kind: no
Docker engine / kind)."""

from __future__ import annotations

import os
import sys

import pytest

from tests.e2e import providers

PROVIDERS = [p.strip() for p in os.environ.get("E2E_PROVIDERS", "local-node,kind").split(",") if p.strip()]


def _progress(config):
    capman = config.pluginmanager.getplugin("capturemanager")

    def progress(msg: str) -> None:
        if capman is not None:
            with capman.global_and_fixture_disabled():
                sys.stderr.write(msg + "\n")
        else:
            sys.stderr.write(msg + "\n")

    return progress


@pytest.fixture(scope="module", params=PROVIDERS)
def cluster(request):
    if request.param == "local-node":
        from devtools.harness.node import skip_reason

        reason = skip_reason()
        if reason:
            pytest.skip(f"local-node provider: {reason}")
        c = providers.LocalNodeCluster(progress=_progress(request.config))
    elif request.param == "kind":
        from tests.e2e import providers_kind

        reason = providers_kind.skip_reason()
        if reason:
            pytest.skip(f"kind provider: {reason}")
        c = providers_kind.KindCluster(progress=_progress(request.config))
    else:
        raise pytest.UsageError(f"unknown E2E_PROVIDERS entry {request.param!r} (local-node, kind)")
    try:
        yield c
    finally:
        c.close()


@pytest.fixture(autouse=True)
def _diagnostics_on_failure(request):
    yield
    rep = getattr(request.node, "rep_call", None)
    if rep is not None and rep.failed and "cluster" in request.fixturenames:
        c = request.getfixturevalue("cluster")
        request.node.add_report_section("call", "cluster diagnostics", c.diagnostics())


@pytest.hookimpl(wrapper=True, tryfirst=True)
def pytest_runtest_makereport(item, call):
    rep = yield
    if rep.when == "call":
        item.rep_call = rep
    return rep
