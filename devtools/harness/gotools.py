"""The real tools users run, built from Go modules and cached like the API server harness.

* ``helm``     -- helm.sh/helm/v3 v3.22.0, package ``cmd/helm`` (devtools/go/helm), linked with the
  version stamps of Helm's own Makefile (its version, and Kubernetes 1.37 from client-go v0.37.0
  for `helm template`/`lint`'s default capabilities; without them helm assumes Kubernetes 1.20)
* ``promtool`` -- github.com/prometheus/prometheus v0.316.0 (Prometheus 3.x), package
  ``cmd/promtool`` built with ``-tags remove_all_sd``: Prometheus' own build tag that leaves out
  the service-discovery plugins (AWS, Azure, GCE, ...) promtool never uses for ``check rules`` /
  ``test rules`` / ``promql``; the tool is otherwise the released one (devtools/go/promtool)
* ``promql``   -- Prometheus' own PromQL parser (same module version as promtool): which metrics
  and labels an expression names (devtools/go/promql)
* ``rbacagg``  -- Kubernetes' ClusterRole aggregation controller (k8s.io/kubernetes v1.36.3, the API
  server harness's version) as a process, since the harness has no kube-controller-manager
  (devtools/go/rbacagg)
* ``argolua``  -- gopher-lua v1.1.2 running a health script the way Argo CD's controller does
  (devtools/go/argolua/main.go says exactly how)

``ensure_built(name)`` returns the binary's path (see devtools/harness/gobuild.py for the cache);
``helm_binary()`` etc. are shorthands. Each module's go.mod/go.sum pin the versions.
"""

from __future__ import annotations

from pathlib import Path

from .gobuild import GO_DIR, Progress, build_go_binary

GOTOOLS = GO_DIR

TOOLS: dict[str, dict] = {
    "helm": {"src": GOTOOLS / "helm", "package": "helm.sh/helm/v3/cmd/helm", "tags": (),
             "ldflags": " ".join(f"-X helm.sh/helm/v3/{var}" for var in (
                 "internal/version.version=v3.22.0",
                 "pkg/lint/rules.k8sVersionMajor=1", "pkg/lint/rules.k8sVersionMinor=37",
                 "pkg/chartutil.k8sVersionMajor=1", "pkg/chartutil.k8sVersionMinor=37"))},
    "promtool": {"src": GOTOOLS / "promtool", "package": "github.com/prometheus/prometheus/cmd/promtool",
                 "tags": ("remove_all_sd",)},
    "promql": {"src": GOTOOLS / "promql", "package": ".", "tags": ()},
    "rbacagg": {"src": GOTOOLS / "rbacagg", "package": ".", "tags": ()},
    "argolua": {"src": GOTOOLS / "argolua", "package": ".", "tags": ()},
}

_built: dict[str, Path] = {}


def ensure_built(name: str, progress: Progress | None = print) -> Path:
    if name not in _built:
        t = TOOLS[name]
        _built[name] = build_go_binary(t["src"], name, progress=progress, package=t["package"], tags=t["tags"],
                                       ldflags=t.get("ldflags", ""))
    return _built[name]


def ensure_helm(progress: Progress | None = print) -> Path:
    return ensure_built("helm", progress)


def ensure_promtool(progress: Progress | None = print) -> Path:
    return ensure_built("promtool", progress)


def ensure_argolua(progress: Progress | None = print) -> Path:
    return ensure_built("argolua", progress)


def ensure_promql(progress: Progress | None = print) -> Path:
    return ensure_built("promql", progress)


def ensure_rbacagg(progress: Progress | None = print) -> Path:
    return ensure_built("rbacagg", progress)


def build_or_skip(name: str, progress: Progress | None = None) -> Path:
    """For tests: the tool's binary, or pytest.skip when Go is not installed (CI installs it)."""
    import pytest

    from .gobuild import GoToolchainMissing, find_go

    if not find_go():
        pytest.skip(f"the Go toolchain is not installed: cannot build {name}")
    try:
        return ensure_built(name, progress)
    except GoToolchainMissing as e:  # pragma: no cover - find_go said yes
        pytest.skip(str(e))
