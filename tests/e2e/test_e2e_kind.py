"""The kind end-to-end suite (tests/e2e/run.sh) as a pytest test.

Marked ``e2e``; skipped, with the reason, where there is no Docker engine, no kind or no kubectl.
Select it alone with ``pytest -m e2e tests/e2e``; deselect it with ``-m "not e2e"``. The suite takes
several minutes (cluster, image build, Elasticsearch start). Its output is shown when it fails, or
live with ``pytest -s``; ``bash tests/e2e/run.sh`` (``make e2e``) runs the same without pytest.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent.parent
RUN_SH = HERE / "run.sh"

pytestmark = [pytest.mark.e2e, pytest.mark.slow]


def _docker_engine_problem() -> str | None:
    if shutil.which("docker") is None:
        return "the docker CLI is not installed"
    try:
        probe = subprocess.run(["docker", "info"], capture_output=True, text=True, timeout=30)
    except subprocess.TimeoutExpired:
        return "`docker info` did not answer within 30s"
    if probe.returncode != 0:
        detail = (probe.stderr or probe.stdout).strip().splitlines()
        return "`docker info` failed (no running Docker engine): " + (detail[-1] if detail else f"exit {probe.returncode}")
    return None


def _skip_reason() -> str | None:
    problem = _docker_engine_problem()
    if problem:
        return problem
    for tool in ("kind", "kubectl"):
        if shutil.which(tool) is None:
            return f"{tool} is not installed (needed by tests/e2e/run.sh)"
    return None


def test_kind_end_to_end():
    reason = _skip_reason()
    if reason:
        pytest.skip(f"kind e2e suite skipped: {reason}")
    timeout = int(os.environ.get("E2E_SUITE_TIMEOUT", "2400"))
    proc = subprocess.run(["bash", str(RUN_SH)], cwd=ROOT, timeout=timeout)
    assert proc.returncode == 0, f"tests/e2e/run.sh failed with exit code {proc.returncode} (see its output above)"
