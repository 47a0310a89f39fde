"""The node-side Kubernetes components of the single-node cluster, from Go modules.

``devtools/go/node`` is one Go main module (same ``k8s.io/kubernetes`` version and staging
``replace``s as ``devtools/go/apiserver``) whose one binary runs kubelet, kube-controller-manager,
kube-scheduler or kube-proxy (``node kubelet ARGS``): one ``go build``, so the packages they
share compile once. It is cached like the API server harness (devtools/harness/gobuild.py), by the
hash of the module's files, the Go version and the ldflags, which stamp the Kubernetes version
(without it the Node reports ``v0.0.0-master``).
"""

from __future__ import annotations

import re
from pathlib import Path

from .gobuild import GO_DIR, Progress, build_go_binary

SRC_DIR = GO_DIR / "node"
BINARY_NAME = "kube-node-harness"
COMPONENTS = ("kubelet", "kube-controller-manager", "kube-scheduler", "kube-proxy")


def k8s_version(src_dir: Path = SRC_DIR) -> str:
    """The ``k8s.io/kubernetes`` version pinned in the module's go.mod (e.g. ``v1.36.3``)."""
    text = (src_dir / "go.mod").read_text()
    m = re.search(r"^\s*k8s\.io/kubernetes\s+(v\S+)", text, re.M)
    if not m:
        raise RuntimeError(f"{src_dir / 'go.mod'} does not require k8s.io/kubernetes")
    return m.group(1)


def ldflags(version: str | None = None) -> str:
    v = version or k8s_version()
    major, minor = v.lstrip("v").split(".")[:2]
    pkg = "k8s.io/component-base/version"
    return " ".join(
        f"-X {pkg}.{k}={val}"
        for k, val in (("gitVersion", v), ("gitMajor", major), ("gitMinor", minor), ("gitTreeState", "clean"))
    )


def ensure_built(progress: Progress | None = print) -> Path:
    """Build (or reuse the cached) node binary and return its path."""
    return build_go_binary(SRC_DIR, BINARY_NAME, progress=progress, ldflags=ldflags())
