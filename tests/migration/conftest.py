"""Fixtures of the migration tests: those of tests/integration (the real API server, the emulator,
the operator process), plus a short migration poll period and a seeded source."""

from __future__ import annotations

import pytest

from tests.integration.conftest import cluster, emulator, installed, operator, pytest_runtest_makereport  # noqa: F401

pytestmark = pytest.mark.apiserver


@pytest.fixture(autouse=True)
def fast_poll(monkeypatch):
    monkeypatch.setenv("ROLLUP_MIGRATION_POLL_SECONDS", "0.3")


@pytest.fixture
def migration_crd(installed, kubectl):  # noqa: F811
    kubectl("wait", "--for=condition=Established", "crd/rollupmigrations.rollup.esops.dev", "--timeout=60s")
    return True
