"""run.sh against fake docker/kind/kubectl/curl (tests/e2e/fakeworld.py), so that its plumbing is
exercised where there is no Docker: control flow, the JSON it sends, the in-pod curl snippet, the
jsonpath helpers, waits, failure reporting and the cleanup trap.

This says nothing about the operator or Elasticsearch (both are make-believe here); the real thing
is test_e2e_kind.py.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent.parent

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(shutil.which("python3") is None, reason="run.sh needs python3 on PATH"),
]


def run(tmp_path: Path, **env: str) -> tuple[subprocess.CompletedProcess, dict, list[list[str]]]:
    bindir = tmp_path / "bin"
    bindir.mkdir(exist_ok=True)
    for tool in ("docker", "kind", "kubectl", "curl"):
        wrapper = bindir / tool
        wrapper.write_text(f'#!/bin/sh\nexec "{sys.executable}" "{HERE / "fakeworld.py"}" {tool} "$@"\n')
        wrapper.chmod(0o755)
    state = tmp_path / "state.json"
    full_env = {
        **{k: v for k, v in os.environ.items() if k not in ("KUBECONFIG", "KEEP_CLUSTER", "SKIP_BUILD", "ES_VERSION")},
        "PATH": f"{bindir}{os.pathsep}{os.environ['PATH']}",
        "FAKEWORLD_STATE": str(state),
        "E2E_WORK_DIR": str(tmp_path / "work"),
        "E2E_TIMEOUT": "4",
        "CLUSTER_NAME": "fake-e2e",
        **env,
    }
    proc = subprocess.run(["bash", str(HERE / "run.sh")], cwd=ROOT, env=full_env, capture_output=True, text=True, timeout=120)
    calls = [json.loads(line) for line in Path(str(state) + ".log").read_text().splitlines()]
    return proc, json.loads(state.read_text()), calls


def index_of(calls: list[list[str]], *needle: str) -> int:
    for i, call in enumerate(calls):
        if all(n in call for n in needle):
            return i
    raise AssertionError(f"no call with {needle}")


def test_happy_path_runs_every_step_and_deletes_the_cluster(tmp_path):
    proc, state, calls = run(tmp_path)
    assert proc.returncode == 0, proc.stderr[-4000:]
    assert "E2E PASSED" in proc.stderr
    assert state["clusters"] == {}, "the kind cluster was not deleted"
    # the image run.sh builds is the one it loads and the one the overlay puts in the Deployment
    assert index_of(calls, "docker", "build", "rollup-operator:e2e") < index_of(calls, "kind", "load", "docker-image", "rollup-operator:e2e")
    assert ["docker", "pull", "docker.elastic.co/elasticsearch/elasticsearch:8.17.4"] in calls
    # the usage seed comes before the first job; the role is created before the user
    assert index_of(calls, "curl", "http://localhost:9200/rollup-usage-seed") < index_of(calls, "curl", "http://localhost:9200/_rollup/job/sensor-hourly", "PUT")
    assert index_of(calls, "curl", "http://localhost:9200/_security/role/rollup_operator_e2e") < index_of(calls, "curl", "http://localhost:9200/_security/user/rollup-operator-e2e")
    assert index_of(calls, "kubectl", "patch") < index_of(calls, "kubectl", "delete", "rollupjob/sensor-managed")


def test_a_stop_that_never_happens_fails_with_diagnostics_and_cleans_up(tmp_path):
    proc, state, _ = run(tmp_path, FAKEWORLD_BREAK_STOP="1")
    assert proc.returncode == 1
    assert "E2E FAILED (assert: desiredState stopped stops sensor-hourly)" in proc.stderr
    assert "== [" in proc.stderr and "diagnostics" in proc.stderr
    assert state["clusters"] == {}


def test_keep_cluster(tmp_path):
    proc, state, _ = run(tmp_path, KEEP_CLUSTER="1")
    assert proc.returncode == 0, proc.stderr[-4000:]
    assert list(state["clusters"]) == ["fake-e2e"]
    assert "keeping kind cluster fake-e2e" in proc.stderr


def test_an_existing_cluster_is_not_touched_without_reuse(tmp_path):
    proc, state, _ = run(tmp_path, KEEP_CLUSTER="1")
    assert proc.returncode == 0
    proc, state, _ = run(tmp_path)
    assert proc.returncode == 1 and "a kind cluster named fake-e2e exists" in proc.stderr
    assert list(state["clusters"]) == ["fake-e2e"], "a cluster run.sh did not create was deleted"


def test_a_forbidden_connection_fails_with_the_privilege_hint(tmp_path):
    proc, state, _ = run(tmp_path, FAKEWORLD_REQUIRE_MONITOR="1")
    assert proc.returncode == 1
    assert "E2E FAILED (assert: the connection is Ready)" in proc.stderr
    assert "E2E_ES_CLUSTER_PRIVILEGES=manage_rollup,monitor works around it" in proc.stderr
    assert state["clusters"] == {}


def test_extra_cluster_privileges_reach_the_role(tmp_path):
    proc, _, calls = run(tmp_path, FAKEWORLD_REQUIRE_MONITOR="1", E2E_ES_CLUSTER_PRIVILEGES="manage_rollup, monitor")
    assert proc.returncode == 0, proc.stderr[-4000:]
    assert "cluster privileges: manage_rollup, monitor" in proc.stderr
