"""The Argo CD health checks (manifests/gitops/resource_customizations/*/*/health.lua) run in Lua (lupa) on statuses built by the
operator's own code: a RollupJob body -> model.job_spec_from_body -> decide.decide ->
status.job_status (and status.connection_status for connections), JSON round-tripped like the API
server stores them (the builders are the ones in cases.py that also write the testdata/).

Argo CD runs health scripts in gopher-lua (Lua 5.1) with ``obj`` set to the resource, JSON objects
as tables and arrays as 1-based tables, JSON null as nil. The scripts run here under Lua 5.1 and
5.4, with ``os``/``io``/``require``/``load*`` removed.
"""

from __future__ import annotations

import importlib
import importlib.util
import json
from pathlib import Path
from typing import Any

import pytest
import yaml

from rollup_operator.job.observations import (
    FORBIDDEN,
    SECRET_KEY_NOT_FOUND,
    SECRET_NOT_ALLOWED,
    SECRET_UNREADABLE,
    UNAUTHORIZED,
    UNAVAILABLE,
    Failure,
    JobAbsent,
    JobObserved,
)
from rollup_operator.job.status import invalid_status
from tests.gitops import render_argocd_cm
from tests.gitops.cases import NOW, conn_body, conn_with_status, job_body, with_status

GITOPS = Path(__file__).resolve().parent.parent.parent / "manifests" / "gitops"
JOB_LUA = GITOPS / "resource_customizations" / "rollup.esops.dev" / "RollupJob" / "health.lua"
CONN_LUA = GITOPS / "resource_customizations" / "rollup.esops.dev" / "ElasticsearchConnection" / "health.lua"

RUNTIMES = [name for name in ("lupa.lua51", "lupa.lua54") if importlib.util.find_spec(name) is not None]
if not RUNTIMES:  # pragma: no cover - lupa builds always ship one of them
    RUNTIMES = ["lupa"]


# --- running a health script like Argo CD does ---------------------------------------------------


def to_lua(lua, value: Any):
    """Python (JSON-shaped) value -> Lua value: dicts and lists become tables (lists 1-based),
    None is left out (JSON null is nil in Argo's Lua)."""
    if isinstance(value, dict):
        table = lua.table()
        for k, v in value.items():
            if v is not None:
                table[k] = to_lua(lua, v)
        return table
    if isinstance(value, (list, tuple)):
        table = lua.table()
        for i, v in enumerate(value, start=1):
            table[i] = to_lua(lua, v)
        return table
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    raise TypeError(f"not JSON: {value!r}")


@pytest.fixture(params=RUNTIMES)
def health(request):
    module = importlib.import_module(request.param)

    def run(script: Path, obj: dict) -> tuple[str, str]:
        lua = module.LuaRuntime(unpack_returned_tuples=True)
        lua.execute("os = nil; io = nil; require = nil; dofile = nil; loadfile = nil; load = nil; loadstring = nil")
        # what the API server would hand out: plain JSON, nulls dropped by the status patch
        lua.globals().obj = to_lua(lua, json.loads(json.dumps(obj)))
        hs = lua.execute(script.read_text())
        assert hs is not None, "the script returned nothing"
        status, message = hs["status"], hs["message"]
        assert status in ("Healthy", "Progressing", "Degraded", "Suspended", "Missing"), status
        assert isinstance(message, str) and message, "hs.message must be a non-empty string"
        return status, message

    return run


# --- statuses from the operator's code -----------------------------------------------------------


def conditions(obj: dict) -> dict[str, dict]:
    return {c["type"]: c for c in obj["status"]["conditions"]}


# --- RollupJob -----------------------------------------------------------------------------------


def test_stopped_and_converged_is_healthy(health):
    obj = with_status(job_body(), JobObserved("stopped", {"pages_processed": 4}))
    assert conditions(obj)["Ready"]["status"] == "True"
    status, message = health(JOB_LUA, obj)
    assert status == "Healthy"
    assert message == "rollup job [sensor-hourly] is stopped"


def test_started_and_running_is_healthy(health):
    obj = with_status(job_body(desiredState="started"), JobObserved("indexing"))
    assert health(JOB_LUA, obj) == ("Healthy", "rollup job [sensor-hourly] is indexing")


def test_stopping_is_progressing(health):
    obj = with_status(job_body(), JobObserved("indexing"))
    assert conditions(obj)["Reconciling"]["status"] == "True"
    status, message = health(JOB_LUA, obj)
    assert status == "Progressing"
    assert message == "stopping rollup job [sensor-hourly] (state indexing)"


def test_stopping_then_stopped_across_passes(health):
    stopping = with_status(job_body(), JobObserved("stopping"))
    assert health(JOB_LUA, stopping)[0] == "Progressing"
    stopped = with_status(job_body(), JobObserved("stopped"), previous=stopping["status"])
    assert health(JOB_LUA, stopped)[0] == "Healthy"


def test_job_not_found_is_degraded(health):
    obj = with_status(job_body(), JobAbsent())
    assert conditions(obj)["Stalled"]["reason"] == "JobNotFound"
    status, message = health(JOB_LUA, obj)
    assert status == "Degraded"
    assert message.startswith("rollup job [sensor-hourly] does not exist on connection es")


def test_forbidden_is_degraded_with_the_stalled_message(health):
    failure = Failure(FORBIDDEN, "action [cluster:admin/xpack/rollup/stop] is unauthorized for user [ops] (403): grant the user the cluster privilege manage_rollup")
    obj = with_status(job_body(), failure)
    assert health(JOB_LUA, obj) == ("Degraded", failure.message)


def test_transient_unavailability_is_progressing(health):
    obj = with_status(job_body(), Failure(UNAVAILABLE, "cannot reach Elasticsearch: connection refused"))
    status, message = health(JOB_LUA, obj)
    assert status == "Progressing"
    assert "connection refused" in message and "retrying with backoff" in message


def test_invalid_spec_is_degraded(health):
    obj = {**job_body(), "status": invalid_status(3, "spec.stop.timeout must be greater than zero", None, NOW)}
    assert health(JOB_LUA, obj) == ("Degraded", "spec.stop.timeout must be greater than zero")


def test_suspended_away_from_the_desired_state_is_suspended(health):
    obj = with_status(job_body(suspend=True), JobObserved("indexing"))
    assert obj["status"]["suspended"] is True
    assert conditions(obj)["Ready"]["status"] == "False"
    status, message = health(JOB_LUA, obj)
    assert status == "Suspended"
    assert message.startswith("enforcement is suspended")


def test_suspended_in_the_desired_state_is_healthy(health):
    # Ready=True wins over suspended (the rule order): the job is where it should be; the
    # message still says that enforcement is suspended.
    obj = with_status(job_body(suspend=True), JobObserved("stopped"))
    status, message = health(JOB_LUA, obj)
    assert status == "Healthy"
    assert message.startswith("enforcement is suspended")


def test_suspended_by_annotation(health):
    body = job_body()
    body["metadata"]["annotations"] = {"rollup.esops.dev/suspend": "true"}
    obj = with_status(body, JobObserved("started"))
    assert health(JOB_LUA, obj)[0] == "Suspended"


def test_observed_generation_behind_is_progressing(health):
    obj = with_status(job_body(generation=3), JobObserved("stopped"))
    obj["metadata"]["generation"] = 4  # the spec changed; the operator has not looked yet
    assert conditions(obj)["Ready"]["status"] == "True"  # stale, must not count
    assert health(JOB_LUA, obj) == ("Progressing", "Waiting for the operator to observe generation 4")


def test_stalled_status_of_an_old_generation_is_progressing(health):
    obj = with_status(job_body(generation=1), JobAbsent())
    obj["metadata"]["generation"] = 2
    assert health(JOB_LUA, obj)[0] == "Progressing"


def test_no_status_is_progressing(health):
    assert health(JOB_LUA, job_body()) == ("Progressing", "Waiting for the operator to report status")


def test_deleting_is_progressing(health):
    body = job_body(deletionPolicy="Delete")
    body["metadata"]["deletionTimestamp"] = "2026-01-01T00:00:00Z"
    body["metadata"]["finalizers"] = ["rollup.esops.dev/cleanup"]
    obj = with_status(body, JobObserved("stopped"))
    status, message = health(JOB_LUA, obj)
    assert status == "Progressing" and "deleting" in message


def test_status_without_conditions_is_progressing(health):
    obj = {**job_body(), "status": {"observedGeneration": 3}}
    assert health(JOB_LUA, obj) == ("Progressing", "Waiting for the operator")


# --- ElasticsearchConnection ---------------------------------------------------------------------


def test_connected_is_healthy(health):
    status, message = health(CONN_LUA, conn_with_status(None))
    assert status == "Healthy"
    assert message == "Elasticsearch 8.17.4 is reachable; 2 rollup job(s) on the cluster"


@pytest.mark.parametrize("kind", [UNAUTHORIZED, FORBIDDEN, SECRET_NOT_ALLOWED, SECRET_KEY_NOT_FOUND, SECRET_UNREADABLE])
def test_connection_stalled_is_degraded(health, kind):
    failure = Failure(kind, f"{kind}: something to fix")
    assert health(CONN_LUA, conn_with_status(failure)) == ("Degraded", failure.message)


def test_connection_unreachable_is_progressing(health):
    failure = Failure(UNAVAILABLE, "cannot reach Elasticsearch: timed out")
    assert health(CONN_LUA, conn_with_status(failure)) == ("Progressing", failure.message)


def test_connection_generation_behind_is_progressing(health):
    obj = conn_with_status(None, generation=2)
    obj["metadata"]["generation"] = 3
    assert health(CONN_LUA, obj) == ("Progressing", "Waiting for the operator to observe generation 3")


def test_connection_without_status_is_progressing(health):
    assert health(CONN_LUA, conn_body())[0] == "Progressing"


# --- the argocd-cm patch embeds the scripts verbatim ----------------------------------------------


def test_argocd_cm_patch_embeds_the_lua_files_verbatim():
    cm = yaml.safe_load(render_argocd_cm.PATCH.read_text())
    assert cm["kind"] == "ConfigMap" and cm["metadata"]["name"] == "argocd-cm"
    assert set(cm["data"]) == set(render_argocd_cm.SCRIPTS)
    for key, filename in render_argocd_cm.SCRIPTS.items():
        assert cm["data"][key] == (GITOPS / filename).read_text(), f"{key} differs from {filename}: python -m tests.gitops.render_argocd_cm"


def test_argocd_cm_patch_is_rendered_from_the_lua_files():
    assert render_argocd_cm.PATCH.read_text() == render_argocd_cm.render(), "run: python -m tests.gitops.render_argocd_cm"


def test_keys_name_the_crds_group_and_kinds():
    root = GITOPS.parent
    for crd_file, key in (("rollup.esops.dev_rollupjobs.yaml", "resource.customizations.health.rollup.esops.dev_RollupJob"),
                          ("rollup.esops.dev_elasticsearchconnections.yaml", "resource.customizations.health.rollup.esops.dev_ElasticsearchConnection")):
        crd = yaml.safe_load((root / "crds" / crd_file).read_text())
        assert key == f'resource.customizations.health.{crd["spec"]["group"]}_{crd["spec"]["names"]["kind"]}'
