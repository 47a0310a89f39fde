"""Fixtures for the fault and abuse suite.

The operator, cluster and emulator fixtures are the integration suite's (imported, not copied):
the operator runs as a real separate process with the RBAC of manifests/, against the session's
real kube-apiserver and the Elasticsearch emulator. Added here:

* ``report``: ``report(scenario, expectation) -> Row``; rows are collected for the session and
  written to ``tests/faults/REPORT.md`` (and printed) at the end; see report.py.
"""

from __future__ import annotations

import pytest

from tests.integration.conftest import cluster, emulator, installed, operator  # noqa: F401 - fixtures

from .report import Report

REPORT = Report()


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    rep = outcome.get_result()
    setattr(item, f"rep_{rep.when}", rep)  # the operator fixture prints its log when the call failed
    if rep.when == "teardown":
        first = next((r for r in (getattr(item, "rep_setup", None), getattr(item, "rep_call", None))
                      if r is not None and not r.passed), None)
        final = first or getattr(item, "rep_call", None) or rep
        message = ""
        if not final.passed:
            crash = getattr(final.longrepr, "reprcrash", None)
            message = (crash.message if crash else str(final.longrepr)).strip().splitlines()[0][:240]
        REPORT.finish(item.nodeid, final.outcome, message)


@pytest.fixture
def report(request):
    def add(scenario: str, expectation: str):
        return REPORT.add(scenario, expectation, request.node.nodeid)
    return add


def pytest_sessionfinish(session):
    if REPORT.rows:
        REPORT.write()


def pytest_terminal_summary(terminalreporter):
    if REPORT.rows:
        terminalreporter.write_sep("=", "fault suite report (tests/faults/REPORT.md)")
        terminalreporter.write(REPORT.markdown())
