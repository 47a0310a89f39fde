"""Render manifests/gitops/argocd-cm-patch.yaml from the health.lua files of
manifests/gitops/resource_customizations/ (Argo CD's own layout: <group>/<Kind>/health.lua).

    python -m tests.gitops.render_argocd_cm          # rewrite the patch
    python -m tests.gitops.render_argocd_cm --check  # exit 1 if it is out of date

tests/gitops/test_argocd_health.py asserts the patch embeds exactly the health.lua files' content.
"""

from __future__ import annotations

import sys
from pathlib import Path

GITOPS = Path(__file__).resolve().parent.parent.parent / "manifests" / "gitops"
PATCH = GITOPS / "argocd-cm-patch.yaml"
CUSTOMIZATIONS = GITOPS / "resource_customizations"
# argocd-cm key -> health.lua, relative to GITOPS
SCRIPTS = {
    "resource.customizations.health.rollup.esops.dev_RollupJob": "resource_customizations/rollup.esops.dev/RollupJob/health.lua",
    "resource.customizations.health.rollup.esops.dev_ElasticsearchConnection":
        "resource_customizations/rollup.esops.dev/ElasticsearchConnection/health.lua",
    "resource.customizations.health.rollup.esops.dev_RollupMigration":
        "resource_customizations/rollup.esops.dev/RollupMigration/health.lua",
}

HEADER = """\
# Argo CD custom health checks for the rollup-operator's resources, as a patch of argocd-cm.
# GENERATED from resource_customizations/rollup.esops.dev/*/health.lua by
# `python -m tests.gitops.render_argocd_cm`; edit the health.lua files, not this one (a test checks
# they are identical).
#
#   kubectl -n argocd patch configmap argocd-cm --type merge --patch-file manifests/gitops/argocd-cm-patch.yaml
#
# or list it under `patches:` of the kustomization that installs Argo CD.
apiVersion: v1
kind: ConfigMap
metadata:
  name: argocd-cm
  namespace: argocd
  labels:
    app.kubernetes.io/name: argocd-cm
    app.kubernetes.io/part-of: argocd
data:
"""


def render() -> str:
    out = [HEADER]
    for key, filename in SCRIPTS.items():
        lua = (GITOPS / filename).read_text()
        assert lua.endswith("\n") and not lua.endswith("\n\n"), f"{filename} must end with exactly one newline"
        out.append(f"  {key}: |\n")
        out.extend(f"    {line}\n" if line else "\n" for line in lua.splitlines())
    return "".join(out)


def main(argv: list[str]) -> int:
    text = render()
    if "--check" in argv:
        if PATCH.read_text() != text:
            print(f"{PATCH} is out of date: run python -m tests.gitops.render_argocd_cm", file=sys.stderr)
            return 1
        return 0
    PATCH.write_text(text)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
