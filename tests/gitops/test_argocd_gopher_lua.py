"""The Argo CD health checks in Argo CD's own engine: gopher-lua v1.1.2 set up the way Argo CD's
controller sets up an argocd-cm script (util/lua/lua.go of argoproj/argo-cd v3.5.1, unchanged on
master 3.6.0; see devtools/go/argolua/main.go): base, package and table libraries only, `os`
only through require("os") with time/date. Every case of Argo CD's test layout
(resource_customizations/<group>/<Kind>/health_test.yaml + testdata/, built from the operator's own
status code by tests/gitops/cases.py) is run that way, and with all libraries open, as Argo CD runs
its built-in checks and its own TestLuaHealthScript."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest
import yaml

from devtools.harness.gotools import build_or_skip

from . import cases

KINDS = sorted(p.parent for p in cases.CUSTOMIZATIONS.glob("*/*/health.lua"))


@pytest.fixture(scope="module")
def argolua():
    return build_or_skip("argolua")


def run(binary: Path, mode: str, runs: list[tuple[str, dict]]) -> list[dict]:
    payload = {"mode": mode, "runs": [{"script": s, "obj": o} for s, o in runs]}
    proc = subprocess.run([str(binary)], input=json.dumps(payload), capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout)


def test_the_layout_is_argo_cds():
    assert [str(k.relative_to(cases.CUSTOMIZATIONS)) for k in KINDS] == [
        "rollup.esops.dev/ElasticsearchConnection", "rollup.esops.dev/RollupJob", "rollup.esops.dev/RollupMigration"]
    for kind_dir in KINDS:
        tests = yaml.safe_load((kind_dir / "health_test.yaml").read_text())["tests"]
        assert tests and all(set(t) == {"healthStatus", "inputPath"} for t in tests)
        listed = {t["inputPath"] for t in tests}
        assert listed == {f"testdata/{p.name}" for p in (kind_dir / "testdata").glob("*.yaml")}
        for t in tests:
            obj = yaml.safe_load((kind_dir / t["inputPath"]).read_text())
            assert f'{obj["apiVersion"].split("/")[0]}/{obj["kind"]}' == str(kind_dir.relative_to(cases.CUSTOMIZATIONS))


def test_testdata_is_what_the_operator_builds_today():
    assert cases.main(["--check"]) == 0, "run: python -m tests.gitops.cases"


@pytest.mark.parametrize("mode", ["restricted", "open"])
@pytest.mark.parametrize("kind_dir", KINDS, ids=[k.name for k in KINDS])
def test_health_test_yaml_in_gopher_lua(argolua, kind_dir, mode):
    script = (kind_dir / "health.lua").read_text()
    tests = yaml.safe_load((kind_dir / "health_test.yaml").read_text())["tests"]
    objs = [yaml.safe_load((kind_dir / t["inputPath"]).read_text()) for t in tests]
    results = run(argolua, mode, [(script, o) for o in objs])
    failures = [f"{t['inputPath']}: want {t['healthStatus']}, got {r}" for t, r in zip(tests, results)
                if r != t["healthStatus"]]
    assert not failures, "\n".join(failures)


PROBE = """
local seen = {}
for _, name in ipairs({"string", "math", "os", "io", "coroutine", "debug", "table", "package", "require",
                       "pairs", "ipairs", "tostring", "tonumber", "type", "pcall", "error", "loadstring", "dofile"}) do
  seen[#seen + 1] = name .. "=" .. type(_G[name])
end
seen[#seen + 1] = "table.insert=" .. type(table.insert)
seen[#seen + 1] = "table.time=" .. type(table.time)
local os_ = require("os")
local keys = {}
for k in pairs(os_) do keys[#keys + 1] = k end
table.sort(keys)
seen[#seen + 1] = "require(os)=" .. table.concat(keys, ",")
seen[#seen + 1] = "methods=" .. tostring(pcall(function() return ("x"):upper() end))
return {status = "Healthy", message = table.concat(seen, " ")}
"""


def test_an_argocd_cm_script_gets_exactly_argo_cds_library_set(argolua):
    message = run(argolua, "restricted", [(PROBE, {})])[0]["message"]
    got = dict(item.split("=", 1) for item in message.split(" "))
    assert got == {
        "string": "nil", "math": "nil", "os": "nil", "io": "nil", "coroutine": "nil", "debug": "nil",
        "table": "table", "package": "table", "require": "function", "pairs": "function", "ipairs": "function",
        "tostring": "function", "tonumber": "function", "type": "function", "pcall": "function", "error": "function",
        "loadstring": "function", "dofile": "function",
        "table.insert": "function", "table.time": "nil",  # Argo's OpenSafeOs registers under "table": a no-op
        "require(os)": "date,time",
        "methods": "false",  # no string library, so no string methods
    }, message


def test_open_libs_is_what_built_in_checks_get(argolua):
    message = run(argolua, "open", [(PROBE, {})])[0]["message"]
    got = dict(item.split("=", 1) for item in message.split(" "))
    assert got["string"] == got["math"] == got["os"] == "table" and got["methods"] == "true"


def test_engine_semantics_match_argo_cd(argolua):
    # an invalid status becomes Unknown; a runtime error is an error; nil is an empty status
    out = run(argolua, "restricted", [
        ('return {status = "Fine", message = "x"}', {}),
        ('error("boom")', {}),
        ("return nil", {}),
        ('return {status = "Healthy", message = string.format("%d", 1)}', {}),
        ('return {status = "Healthy", message = tostring(obj.metadata.generation)}', {"metadata": {"generation": 3}}),
    ])
    assert out[0] == {"status": "Unknown", "message": "Lua returned an invalid health status"}
    assert "boom" in out[1]["error"]
    assert out[2] == {}
    assert "string" in out[3]["error"]  # a script using string.* fails under argocd-cm
    assert out[4] == {"status": "Healthy", "message": "3"}  # JSON numbers are Lua numbers (Lua 5.1 prints 3)
