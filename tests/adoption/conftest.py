"""The integration fixtures (real kube-apiserver, emulator, operator process) for the adoption tests.

Re-exported from tests/integration/conftest.py so both suites share one harness and one install
of manifests/; only tests that ask for them need the API server.
"""

from tests.integration.conftest import cluster, emulator, installed, operator, pytest_runtest_makereport  # noqa: F401
