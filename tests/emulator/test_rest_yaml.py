"""Elasticsearch's own rollup YAML REST tests, run against the emulator with the official client.

The YAML files live outside the repository (``<repo>/../shared/reference``); without them the
tests skip. Every test runs on a fresh emulator with security on, as Elasticsearch's x-pack YAML
suite does (superuser ``x_pack_rest_user``), for several version profiles:

* ``8.14.0``: all 22 tests must pass.
* ``8.17.0`` and ``9.1.0``: ``put_job.yml`` creates no rollup usage in its setup, so from 8.15 on
  the usage rule refuses its jobs, and on 9.x its calls carry the deprecation warning that the file
  does not allow. Those tests are strict expected failures (documented in the emulator README);
  the other four files seed ``dummy-rollup-index`` and must pass.
"""

from __future__ import annotations

import warnings

import pytest
from elasticsearch import Elasticsearch, ElasticsearchWarning

from es_rollup_emulator import EmulatorThread

from .conftest import SPEC_DIR, YAML_DIR
from .yaml_runner import Runner, YamlTestSkipped, load_specs, load_tests

PROFILES = ["8.14.0", "8.17.0", "9.1.0"]
USER = ("x_pack_rest_user", "x-pack-test-password")
# put_job.yml tests that fail before the usage rule is consulted (parse errors) still pass on 8.15+
PARSE_TIME_TESTS = {"Try to include headers", "Unknown Metric"}


def _collect():
    if not YAML_DIR.is_dir():
        return [pytest.param(None, None, marks=pytest.mark.skip(reason=f"reference YAML tests not found at {YAML_DIR}"))]
    params = []
    for f in sorted(YAML_DIR.glob("*.yml")):
        for test in load_tests(f):
            for version in PROFILES:
                marks = []
                expected = _expected_failure(f.name, test.name, version)
                if expected:
                    marks.append(pytest.mark.xfail(strict=True, reason=expected))
                params.append(pytest.param(test, version, id=f"{version}-{test.id}", marks=marks))
    return params


def _expected_failure(file: str, name: str, version: str) -> str | None:
    if file != "put_job.yml" or version == "8.14.0":
        return None
    if version.startswith("9."):
        return "9.x adds the rollup deprecation warning, which put_job.yml does not allow"
    if name not in PARSE_TIME_TESTS:
        return "8.15+ refuses new jobs without rollup usage; put_job.yml's setup creates none"
    return None


@pytest.fixture(scope="module")
def specs():
    return load_specs(SPEC_DIR)


@pytest.mark.parametrize("test,version", _collect())
def test_yaml(test, version, specs, loop_thread):
    with warnings.catch_warnings(), EmulatorThread(version=version, users={USER[0]: (USER[1], ["all"])},
                                                   auto_trigger=False,
                                                   loop_thread=loop_thread) as emu:
        warnings.simplefilter("ignore", ElasticsearchWarning)  # checked from the headers instead
        client = Elasticsearch(emu.url, basic_auth=USER, max_retries=0, request_timeout=30)
        try:
            Runner(client, specs, version).run(test)
        except YamlTestSkipped as e:
            pytest.skip(str(e))
        finally:
            client.close()
