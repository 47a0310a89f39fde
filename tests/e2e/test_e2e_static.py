"""Checks of the e2e suite that run anywhere (no Docker): shell syntax, shellcheck, YAML, and that
the image names in manifests/, the kustomize overlay and run.sh agree."""

from __future__ import annotations

import re
import shutil
import subprocess
import tomllib
from pathlib import Path

import pytest
import yaml

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent.parent
RUN_SH = HERE / "run.sh"
OVERLAY = HERE / "overlay" / "kustomization.yaml"
DEPLOYMENT = ROOT / "manifests" / "deployment.yaml"


def _yaml_files() -> list[Path]:
    files = [*sorted((ROOT / "manifests").rglob("*.yaml")), *sorted((ROOT / "manifests").rglob("*.yml")),
             *sorted(HERE.rglob("*.yaml")), *sorted(HERE.rglob("*.yml"))]
    return files


def _run_sh_var(name: str) -> str:
    m = re.search(rf'^{name}="([^"$]*)"$', RUN_SH.read_text(), re.M)
    assert m, f"{name}=\"...\" (a literal) not found in run.sh"
    return m.group(1)


def _deployment() -> dict:
    return yaml.safe_load(DEPLOYMENT.read_text())


def _operator_container() -> dict:
    containers = _deployment()["spec"]["template"]["spec"]["containers"]
    return next(c for c in containers if c["name"] == "operator")


def test_run_sh_syntax():
    proc = subprocess.run(["bash", "-n", str(RUN_SH)], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr


def test_run_sh_is_strict_and_cleans_up():
    text = RUN_SH.read_text()
    assert text.startswith("#!/usr/bin/env bash\n")
    assert "set -euo pipefail" in text
    assert re.search(r"^trap cleanup EXIT$", text, re.M)
    assert "KEEP_CLUSTER" in text and "kind delete cluster" in text


@pytest.mark.skipif(shutil.which("shellcheck") is None, reason="shellcheck is not installed (apt-get install shellcheck)")
def test_run_sh_shellcheck():
    proc = subprocess.run(["shellcheck", "-x", "--severity=style", str(RUN_SH)], capture_output=True, text=True, cwd=HERE)
    assert proc.returncode == 0, proc.stdout + proc.stderr


@pytest.mark.parametrize("path", _yaml_files(), ids=lambda p: str(p.relative_to(ROOT)))
def test_yaml_parses(path: Path):
    docs = [d for d in yaml.safe_load_all(path.read_text()) if d is not None]
    assert docs, f"{path} holds no YAML document"
    for d in docs:
        assert isinstance(d, dict), f"{path}: a document is not a mapping"


def test_deployment_image_matches_project_version():
    image = _operator_container()["image"]
    repo, _, tag = image.rpartition(":")
    version = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["version"]
    assert repo == "ghcr.io/esops/rollup-operator"
    assert tag == version, f"deployment.yaml runs {image} but pyproject.toml says version {version}"


def test_overlay_rewrites_the_deployment_image_to_what_run_sh_builds():
    overlay = yaml.safe_load(OVERLAY.read_text())
    assert overlay["resources"] == ["../../../manifests"]
    assert (OVERLAY.parent / overlay["resources"][0]).resolve() == (ROOT / "manifests").resolve()
    (entry,) = overlay["images"]
    deployed_repo = _operator_container()["image"].rpartition(":")[0]
    # kustomize's images transformer matches on the name without tag: a mismatch is a silent no-op.
    assert entry["name"] == deployed_repo
    assert f'{entry["newName"]}:{entry["newTag"]}' == _run_sh_var("IMAGE")
    # run.sh checks the same thing against the live Deployment after `kubectl apply -k`.
    assert 'kubectl apply -k "${HERE}/overlay"' in RUN_SH.read_text()


def test_run_sh_builds_and_loads_its_image():
    text = RUN_SH.read_text()
    assert re.search(r'docker build -t "\$\{IMAGE\}"', text)
    assert re.search(r'kind load docker-image "\$\{IMAGE\}"', text)


def test_deployment_uses_the_image_entrypoint():
    # The image's ENTRYPOINT is rollup-operator and CMD is run; the Deployment must pass args
    # (which replace CMD) and not command (which would replace the entrypoint).
    c = _operator_container()
    assert "command" not in c
    assert c["args"][0] == "run"


def test_e2e_resources_reference_each_other():
    docs = [d for d in yaml.safe_load_all((HERE / "rollupjobs.yaml").read_text()) if d]
    conns = {d["metadata"]["name"] for d in docs if d["kind"] == "ElasticsearchConnection"}
    jobs = {d["metadata"]["name"]: d for d in docs if d["kind"] == "RollupJob"}
    assert set(jobs) == {"sensor-hourly", "sensor-managed"}
    for job in jobs.values():
        assert job["spec"]["connectionRef"]["name"] in conns
    assert jobs["sensor-hourly"]["spec"]["desiredState"] == "started"
    assert "config" not in jobs["sensor-hourly"]["spec"]
    assert jobs["sensor-managed"]["spec"]["deletionPolicy"] == "Delete" and "config" in jobs["sensor-managed"]["spec"]
    es = [d for d in yaml.safe_load_all((HERE / "elasticsearch.yaml").read_text()) if d]
    svc = next(d for d in es if d["kind"] == "Service")
    (conn,) = [d for d in docs if d["kind"] == "ElasticsearchConnection"]
    assert conn["spec"]["url"] == f'http://{svc["metadata"]["name"]}.{svc["metadata"]["namespace"]}.svc.cluster.local:9200'


def test_e2e_elasticsearch_has_security_on():
    es = [d for d in yaml.safe_load_all((HERE / "elasticsearch.yaml").read_text()) if d]
    dep = next(d for d in es if d["kind"] == "Deployment")
    (c,) = dep["spec"]["template"]["spec"]["containers"]
    env = {e["name"]: e.get("value") for e in c["env"]}
    assert env["xpack.security.enabled"] == "true"
    assert env["discovery.type"] == "single-node"
    assert re.fullmatch(r"docker\.elastic\.co/elasticsearch/elasticsearch:8\.17\.\d+", c["image"])
    assert c["image"].rpartition(":")[2] == re.search(r'ES_VERSION="\$\{ES_VERSION:-([^}]+)\}"', RUN_SH.read_text()).group(1)
