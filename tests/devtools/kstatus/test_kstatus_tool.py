"""The kstatus CLI (cli-utils v0.37.2) gives the verdicts we expect on hand-made objects."""

from __future__ import annotations

import os

import pytest

from devtools.harness import kstatus
from devtools.harness.gobuild import find_go


@pytest.fixture(scope="module", autouse=True)
def _built():
    if not find_go():
        pytest.skip("the Go toolchain is not installed: cannot build the kstatus tool")
    kstatus.ensure_built()


def rollup(name: str, generation: int = 2, observed: int | None = 2, conditions=None) -> dict:
    obj = {
        "apiVersion": "rollup.example.com/v1alpha1",
        "kind": "RollupJob",
        "metadata": {"name": name, "namespace": "default", "generation": generation},
        "spec": {},
    }
    status: dict = {}
    if observed is not None:
        status["observedGeneration"] = observed
    if conditions is not None:
        status["conditions"] = conditions
    if status:
        obj["status"] = status
    return obj


def cond(type_: str, status: str, reason: str = "R", message: str = "") -> dict:
    return {"type": type_, "status": status, "reason": reason, "message": message or f"{type_} is {status}"}


def test_verdicts_on_custom_resources():
    objs = [
        rollup("ready", conditions=[cond("Ready", "True")]),
        rollup("reconciling", conditions=[cond("Ready", "False"), cond("Reconciling", "True", "Progressing", "working on it")]),
        rollup("stalled", conditions=[cond("Stalled", "True", "BadSpec", "cannot go on")]),
        rollup("stale", generation=3, observed=2, conditions=[cond("Ready", "True")]),
    ]
    out = kstatus.compute(objs)
    by_name = {r["name"]: r for r in out}
    assert [r["name"] for r in out] == ["ready", "reconciling", "stalled", "stale"]
    assert by_name["ready"]["status"] == "Current"
    assert by_name["reconciling"]["status"] == "InProgress"
    assert by_name["reconciling"]["message"] == "working on it"
    assert by_name["stalled"]["status"] == "Failed"
    assert by_name["stalled"]["message"] == "cannot go on"
    assert by_name["stale"]["status"] == "InProgress"
    assert "generation" in by_name["stale"]["message"].lower()


def test_single_object_and_deletion():
    one = kstatus.compute(rollup("solo", conditions=[cond("Ready", "True")]))
    assert len(one) == 1 and one[0]["status"] == "Current"
    deleting = rollup("gone", conditions=[cond("Ready", "True")])
    deleting["metadata"]["deletionTimestamp"] = "2026-01-01T00:00:00Z"
    assert kstatus.compute_one(deleting)["status"] == "Terminating"


def test_bad_input_raises():
    with pytest.raises(RuntimeError, match="kstatus failed"):
        kstatus.compute("not an object")  # type: ignore[arg-type]


def test_binary_is_cached():
    a = kstatus.ensure_built(progress=None)
    b = kstatus.ensure_built(progress=None)
    assert a == b and os.access(a, os.X_OK)
