import pytest

from devtools.harness.gotools import build_or_skip


@pytest.fixture(scope="session")
def promtool():
    """The real promtool (prometheus v0.316.0 cmd/promtool, -tags remove_all_sd), cached."""
    return build_or_skip("promtool")


@pytest.fixture(scope="session")
def promql():
    """Prometheus' PromQL parser as a CLI: which metrics and labels an expression names."""
    return build_or_skip("promql")
