import pytest

from devtools.harness.gotools import build_or_skip


@pytest.fixture(scope="session")
def helm_bin():
    """The real helm (helm.sh/helm/v3 v3.22.0 cmd/helm), built from Go modules and cached."""
    return build_or_skip("helm")
