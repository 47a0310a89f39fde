"""The benchmark's quick mode as a test: only its deterministic request counts are asserted.

Timings and memory depend on the machine and are reported, not asserted (run
``python -m devtools.bench`` for the figures). Takes ~1.5 min on two cores.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from devtools.bench.procstat import REPO_ROOT
from devtools.harness.gobuild import find_go

pytestmark = [pytest.mark.slow, pytest.mark.apiserver]


def quick_results(tmp_path_factory, *extra: str) -> dict:
    """Run ``python -m devtools.bench --quick`` (with ``extra``) once and return its JSON figures."""
    if os.environ.get("ROLLUP_NO_APISERVER") == "1":
        pytest.skip("real kube-apiserver disabled by ROLLUP_NO_APISERVER=1")
    if not find_go():
        pytest.skip("the Go toolchain is not installed: cannot build the kube-apiserver harness")
    out = tmp_path_factory.mktemp("bench") / "results.json"
    proc = subprocess.run([sys.executable, "-m", "devtools.bench", "--quick", *extra, "--out", str(out)],
                          cwd=REPO_ROOT, capture_output=True, text=True, timeout=400)
    assert proc.returncode == 0, f"benchmark failed:\n{proc.stderr[-6000:]}"
    print(proc.stdout)
    return json.loads(out.read_text())


@pytest.fixture(scope="module")
def results(tmp_path_factory):
    return quick_results(tmp_path_factory)


def test_cold_start_sends_no_stop_or_start_and_reads_per_connection_not_per_job(results):
    n = results["params"]["endpoints"]
    for run in ("first", "second"):
        es = results["cold_start"][run]["es_requests"]
        assert es.get("stop", 0) == 0 and es.get("start", 0) == 0, (run, es)
        assert es.get("read_all", 0) <= 3 * n, (run, es)
        assert es.get("read_one", 0) == 0, (run, es)


def test_a_stop_that_needs_no_retry_is_one_stop_call(results):
    single = results["per_transition"]["single_stop"]
    assert single["stop_calls"] == 1, single
    assert single["reads_all"] <= 1, single
    mass = results["per_transition"]["mass_stop_per_job"]
    assert mass["stop_timeouts"] == 0, mass  # no retry was needed...
    assert mass["stop_calls"] == 1.0, mass  # ...so exactly one stop call per job


def test_steady_state_is_one_read_per_connection_per_period_and_no_writes(results):
    st = results["steady"]
    n = results["params"]["endpoints"]
    assert 0.75 * n <= st["es_reads_per_period"] <= 1.5 * n, st
    assert set(st["es_requests"]) <= {"read_all"}, st["es_requests"]
    assert st["k8s_writes"] == {}, st["k8s_writes"]
