"""Helpers for the chart tests: the real helm CLI, rendering, and comparing objects semantically."""

from __future__ import annotations

import copy
import json
import subprocess
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parent.parent.parent
CHART = REPO / "charts" / "rollup-operator"
NAMESPACE = "rollup-operator-system"
RELEASE = "rollup-operator"

# What the chart adds to every object (Helm's conventions); stripped before comparing with manifests/.
CHART_LABELS = {"app.kubernetes.io/instance", "app.kubernetes.io/managed-by", "app.kubernetes.io/version", "helm.sh/chart"}
CHART_ANNOTATIONS = {"helm.sh/resource-policy"}


def helm(binary: Path, *args: str, check: bool = True, kubeconfig: str | None = None,
         timeout: float = 300) -> subprocess.CompletedProcess:
    cmd = [str(binary), *(["--kubeconfig", kubeconfig] if kubeconfig else []), *map(str, args)]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, cwd=REPO,
                          env={"HOME": str(Path.home()), "PATH": "/usr/bin:/bin", "HELM_CACHE_HOME": "/tmp/helm-cache",
                               "HELM_CONFIG_HOME": "/tmp/helm-config", "HELM_DATA_HOME": "/tmp/helm-data"})
    if check and proc.returncode != 0:
        raise AssertionError(f"helm {' '.join(map(str, args))} failed (exit {proc.returncode}):\n{proc.stderr}")
    return proc


def template(binary: Path, *args: str, chart: Path = CHART) -> list[dict]:
    out = helm(binary, "template", RELEASE, str(chart), "--namespace", NAMESPACE, *args).stdout
    return [d for d in yaml.safe_load_all(out) if d]


def kustomize(path: Path) -> list[dict]:
    out = subprocess.run(["kubectl", "kustomize", str(path)], capture_output=True, text=True, check=True).stdout
    return [d for d in yaml.safe_load_all(out) if d]


def key(obj: dict) -> tuple[str, str, str]:
    return obj["kind"], obj["metadata"].get("namespace", ""), obj["metadata"]["name"]


def by_key(objs: list[dict]) -> dict[tuple[str, str, str], dict]:
    out = {}
    for o in objs:
        assert key(o) not in out, f"duplicate object {key(o)}"
        out[key(o)] = o
    return out


def strip_chart_additions(obj: dict) -> dict:
    """The object without the labels/annotations the chart adds, wherever labels appear (metadata,
    pod template, selectors, label selectors of affinity and topology spread)."""
    obj = copy.deepcopy(obj)

    def walk(node):
        if isinstance(node, dict):
            for name in ("labels", "matchLabels", "selector"):
                if isinstance(node.get(name), dict):
                    for label in CHART_LABELS:
                        node[name].pop(label, None)
            if isinstance(node.get("annotations"), dict):
                for a in CHART_ANNOTATIONS:
                    node["annotations"].pop(a, None)
                if not node["annotations"]:
                    del node["annotations"]
            for v in node.values():
                walk(v)
        elif isinstance(node, list):
            for v in node:
                walk(v)

    walk(obj)
    return obj


def canonical(obj) -> str:
    return json.dumps(obj, sort_keys=True, indent=1)
