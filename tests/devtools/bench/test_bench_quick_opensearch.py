"""The benchmark's quick mode on the OpenSearch dialect (``--engine opensearch``): its deterministic
request counts. The stop there is the operator's own wait, so a stop is one ``_stop`` plus the reads
of the wait (GET and _explain of that job), never a second ``_stop``."""

from __future__ import annotations


import pytest

from .test_bench_quick import quick_results


pytestmark = [pytest.mark.slow, pytest.mark.apiserver]


@pytest.fixture(scope="module")
def results(tmp_path_factory):
    return quick_results(tmp_path_factory, "--engine", "opensearch", "--skip", "memory")


def test_cold_start_sends_no_stop_or_start_and_reads_per_connection(results):
    n = results["params"]["endpoints"]
    assert results["params"]["engine"] == "opensearch"
    for run in ("first", "second"):
        es = results["cold_start"][run]["es_requests"]
        assert es.get("stop", 0) == 0 and es.get("start", 0) == 0, (run, es)
        assert es.get("read_all", 0) <= 3 * n and es.get("read_one", 0) == 0, (run, es)
        assert es.get("info", 0) == 2 * n  # auto: asked as Elasticsearch, then as OpenSearch


def test_every_stop_is_one_stop_call_and_the_operators_wait(results):
    mass = results["mass_stop"]
    es, jobs = mass["es_requests"], mass["jobs"]
    assert es["stop"] == es["stop_200"] == jobs and mass["stop_timeouts"] == 0, es
    assert jobs <= es["read_one"] <= 8 * jobs, es  # the wait's reads: explain lag 2 s, then every 0.5 s


def test_steady_state_is_one_list_and_explain_per_connection_per_period(results):
    st = results["steady"]
    n = results["params"]["endpoints"]
    assert set(st["es_requests"]) <= {"read_all", "explain"}, st["es_requests"]
    assert 0.75 * n <= st["es_reads_per_period"] <= 1.5 * n, st
    assert st["k8s_writes"] == {}, st["k8s_writes"]
