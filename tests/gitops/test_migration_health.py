"""RollupMigration under Argo CD (the health.lua of manifests/gitops, in lupa) and kstatus (Flux,
kubectl wait-style tools: the real sigs.k8s.io/cli-utils library), on statuses the operator's own
code built (migration_cases.py). Awaiting an approval is Suspended for Argo CD and InProgress for
kstatus (its Ready=False reads as not done: a Flux Kustomization that waits on it waits for the
approval); a stop that needs a person is Degraded/Failed; the cut-over is Healthy/Current."""

from __future__ import annotations

import json

import pytest

from tests.gitops.migration_cases import CASES
from tests.gitops.test_argocd_health import GITOPS, health  # noqa: F401
from devtools.harness import kstatus
from devtools.harness.gobuild import find_go

LUA = GITOPS / "resource_customizations" / "rollup.esops.dev" / "RollupMigration" / "health.lua"


@pytest.mark.parametrize("name", [c[0] for c in CASES])
def test_argo_cd_health(name, health):  # noqa: F811 - the fixture from test_argocd_health
    _, build, expected, message, _ = next(c for c in CASES if c[0] == name)
    obj = json.loads(json.dumps(build()))
    status, text = health(LUA, obj)[:2]
    assert status == expected
    if message.startswith("cond:"):
        cond = next(c for c in obj["status"]["conditions"] if c["type"] == message[5:])
        assert text == cond["message"] and text
    else:
        assert text == message


@pytest.mark.parametrize("name", [c[0] for c in CASES])
def test_kstatus(name):
    if not find_go():
        pytest.skip("the Go toolchain is not installed: cannot build the kstatus tool")
    kstatus.ensure_built()
    _, build, _, _, expected = next(c for c in CASES if c[0] == name)
    assert kstatus.compute(json.loads(json.dumps(build())))[0]["status"] == expected
