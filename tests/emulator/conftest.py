"""Shared fixtures for the emulator's own tests."""

from __future__ import annotations

import warnings
from pathlib import Path

import pytest

from es_rollup_emulator import LoopThread

REPO_ROOT = Path(__file__).resolve().parents[2]
REFERENCE = REPO_ROOT.parent / "shared" / "reference"
YAML_DIR = REFERENCE / "elasticsearch-rollup-rest-tests"
SPEC_DIR = REFERENCE / "elasticsearch-rest-api-spec"


@pytest.fixture(scope="session")
def loop_thread():
    """One background event loop shared by the synchronous emulators of a session."""
    lt = LoopThread()
    lt.acquire()
    yield lt
    lt.release()


@pytest.fixture(autouse=True)
def _quiet_client_warnings():
    from elasticsearch.exceptions import GeneralAvailabilityWarning
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", GeneralAvailabilityWarning)
        yield
