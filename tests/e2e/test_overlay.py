"""tests/e2e/overlay is manifests/ with only the image and its pull policy changed: what the cluster
suite installs is what users install."""

from __future__ import annotations

import shutil
import subprocess

import pytest
import yaml

from .providers import HERE, ROOT


def _build(path) -> list[dict]:
    if shutil.which("kubectl") is None:
        pytest.skip("kubectl is not installed (kubectl kustomize)")
    out = subprocess.run(["kubectl", "kustomize", str(path)], capture_output=True, text=True, check=True).stdout
    return [d for d in yaml.safe_load_all(out) if d]


def test_overlay_only_swaps_image_and_pull_policy():
    base, overlay = _build(ROOT / "manifests"), _build(HERE / "overlay")
    key = lambda d: (d["kind"], d["metadata"].get("namespace"), d["metadata"]["name"])  # noqa: E731
    assert sorted(map(key, base)) == sorted(map(key, overlay))
    by_key = {key(d): d for d in base}
    changed = []
    for d in overlay:
        b = by_key[key(d)]
        if d == b:
            continue
        assert d["kind"] == "Deployment", key(d)
        for cb, co in zip(b["spec"]["template"]["spec"]["containers"], d["spec"]["template"]["spec"]["containers"]):
            assert co["image"] == "rollup-operator:e2e" and co["imagePullPolicy"] == "Never"
            cb, co = dict(cb), dict(co)
            for k in ("image", "imagePullPolicy"):
                cb.pop(k), co.pop(k)
            assert cb == co
        strip = lambda x: {**x, "spec": {**x["spec"], "template": {**x["spec"]["template"], "spec": {  # noqa: E731
            **x["spec"]["template"]["spec"], "containers": None}}}}
        assert strip(d) == strip(b)
        changed.append(key(d))
    assert [(k[0], k[2]) for k in changed] == [("Deployment", "rollup-operator")]
