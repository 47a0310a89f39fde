"""manifests/monitoring/dashboard.json against the dashboard schema Grafana publishes.

Grafana publishes its dashboard schema (CUE) as the TypeScript types of @grafana/schema on npm; no
JSON Schema of it is on our registries. The dashboard is inlined as an object literal typed
`Dashboard` and compiled with tsc --strict, so a wrong type, a missing required field or an unknown
property (excess-property check) fails. node_modules is installed once with `npm ci` and cached
under ~/.cache/rollup-operator/npm-grafana-<hash of package-lock.json>.
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import shutil
import subprocess
from pathlib import Path

import pytest

from devtools.harness.gobuild import cache_dir

from .bundle import DASHBOARD

HERE = Path(__file__).resolve().parent / "grafana"


@pytest.fixture(scope="module")
def grafana_types() -> Path:
    if shutil.which("npm") is None or shutil.which("node") is None:
        pytest.skip("node/npm are not installed: cannot type-check the dashboard against @grafana/schema")
    lock = (HERE / "package-lock.json").read_bytes()
    key = hashlib.sha256((HERE / "package.json").read_bytes() + lock).hexdigest()[:16]
    target = cache_dir() / f"npm-grafana-{key}"
    with open(cache_dir() / "npm-grafana.lock", "w") as f:
        fcntl.flock(f, fcntl.LOCK_EX)
        if not (target / "node_modules" / "typescript" / "bin" / "tsc").exists():
            tmp = target.with_name(target.name + ".tmp")
            shutil.rmtree(tmp, ignore_errors=True)
            tmp.mkdir(parents=True)
            for name in ("package.json", "package-lock.json"):
                shutil.copy(HERE / name, tmp / name)
            subprocess.run(["npm", "ci", "--ignore-scripts", "--no-audit", "--no-fund", "--loglevel=error"],
                           cwd=tmp, check=True, capture_output=True, text=True, timeout=300)
            shutil.rmtree(target, ignore_errors=True)
            tmp.rename(target)
    return target


def typecheck(root: Path, dashboard: dict, name: str) -> subprocess.CompletedProcess:
    src = root / f"{name}.ts"
    src.write_text("import type { Dashboard } from '@grafana/schema';\n"
                   f"export const dashboard: Dashboard = {json.dumps(dashboard, indent=1)};\n")
    try:
        return subprocess.run(["node", "node_modules/typescript/bin/tsc", "--noEmit", "--strict", "--target", "es2020",
                               "--module", "nodenext", "--moduleResolution", "nodenext", "--skipLibCheck", src.name],
                              cwd=root, capture_output=True, text=True, timeout=300)
    finally:
        src.unlink()


def test_dashboard_matches_grafanas_schema(grafana_types):
    proc = typecheck(grafana_types, json.loads(DASHBOARD.read_text()), "check_dashboard")
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_the_check_catches_a_bad_dashboard(grafana_types):
    typo = json.loads(DASHBOARD.read_text())
    typo["refersh"] = "30s"
    proc = typecheck(grafana_types, typo, "check_typo")
    assert proc.returncode != 0 and "refersh" in proc.stdout, proc.stdout
    wrong_type = json.loads(DASHBOARD.read_text())
    wrong_type["panels"][0]["gridPos"]["w"] = "wide"
    proc = typecheck(grafana_types, wrong_type, "check_wrong_type")
    assert proc.returncode != 0 and "not assignable to type 'number'" in proc.stdout, proc.stdout
