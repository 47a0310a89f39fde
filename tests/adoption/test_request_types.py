"""The request bodies ``migration-plan`` emits, type-checked against Elastic's own request types.

The types are those the official ``@elastic/elasticsearch`` npm package generates from the
``elasticsearch-specification`` repository (``lib/api/types``): ``IndicesPutIndexTemplateRequest``,
``IlmPutLifecycleRequest`` (whose ``downsample`` action is ``IlmDownsampleAction``) and
``IndicesPutDataLifecycleRequest`` (``IndicesDownsamplingRound``). Each body is written as an object
literal of that type, so ``tsc --strict`` rejects any unknown or misspelt property, wrong value
type or missing required field at any depth. The npm install is cached by the hash of
``types/package.json`` and ``types/package-lock.json`` (tests/adoption/npmcache.py).
"""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import pytest

from rollup_operator.migration.plan import plan_jobs
from es_rollup_emulator.seed_migration import BLOCKED, DOWNSAMPLEABLE

from . import corpus
from .npmcache import ensure_installed

TYPES_DIR = Path(__file__).resolve().parent / "types"
TYPES = "@elastic/elasticsearch/lib/api/types"


@pytest.fixture(scope="module")
def node_modules(request):
    if not shutil.which("npm") or not shutil.which("node"):
        pytest.skip("node/npm not installed: cannot type-check against Elastic's request types")
    capman = request.config.pluginmanager.getplugin("capturemanager")

    def progress(msg):
        with capman.global_and_fixture_disabled():
            print(msg, flush=True)

    return ensure_installed(TYPES_DIR, progress=progress)


def _literals(plan: dict) -> list[tuple[str, str, dict]]:
    """(request type, label, the request as the npm types spell it: path parts + body keys)."""
    req = plan["requests"]
    name = req["indexTemplate"]["path"].split("/", 1)[1]
    out = [("IndicesPutIndexTemplateRequest", "template", {"name": name, **req["indexTemplate"]["body"]}),
           ("IlmPutLifecycleRequest", "policy", {"name": name, **req["ilmPolicy"]["body"]}),
           ("IndicesPutIndexTemplateRequest", "lifecycle template",
            {"name": name, **req["dataStreamLifecycle"]["indexTemplate"]["body"]})]
    for call in req["dataStreamLifecycle"]["lifecycle"]:
        out.append(("IndicesPutDataLifecycleRequest", "lifecycle", {"name": call["path"].split("/")[1], **call["body"]}))
    return out


def _tsc(node_modules: Path, work: Path, literals: list[tuple[str, str, dict]]) -> subprocess.CompletedProcess:
    lines = [f"import type * as T from '{TYPES}'", ""]
    for n, (type_, label, value) in enumerate(literals):
        lines.append(f"// {label}")
        lines.append(f"export const r{n}: T.{type_} = {json.dumps(value, indent=2)}")
    (work / "bodies.ts").write_text("\n".join(lines) + "\n")
    (work / "tsconfig.json").write_text(json.dumps({"compilerOptions": {
        "strict": True, "noEmit": True, "skipLibCheck": True, "module": "commonjs", "target": "es2022",
        "moduleResolution": "node", "types": [], "typeRoots": [str(node_modules / "node_modules" / "@types")],
        "baseUrl": ".", "paths": {"@elastic/*": [str(node_modules / "node_modules" / "@elastic" / "*")]}},
        "files": ["bodies.ts"]}))
    (work / "node_modules").symlink_to(node_modules / "node_modules")
    tsc = node_modules / "node_modules" / "typescript" / "bin" / "tsc"
    return subprocess.run(["node", str(tsc), "-p", str(work)], capture_output=True, text=True, timeout=300, cwd=work)


def test_every_emitted_body_matches_elastics_request_types(node_modules, tmp_path):
    configs = [dict(c, id=i) for i, c in (DOWNSAMPLEABLE, BLOCKED)] + \
        [dict(j["body"], id=j["id"]) for j in corpus.generated_jobs()]
    plans = [p for p in plan_jobs(configs) if "requests" in p]
    assert len(plans) >= 40
    literals = [lit for p in plans for lit in _literals(p)]
    r = _tsc(node_modules, tmp_path, literals)
    assert r.returncode == 0, f"tsc found {r.stdout.count('error TS')} errors:\n{r.stdout[-6000:]}"
    print(f"{len(literals)} request bodies of {len(plans)} plans type-check")


@pytest.mark.parametrize("break_it, expect", [
    (lambda lits: lits[1][2]["policy"]["phases"]["warm"]["actions"]["downsample"].update(fixed_intervall="1h"),
     "fixed_intervall"),
    (lambda lits: lits[1][2]["policy"]["phases"]["warm"]["actions"]["downsample"].pop("fixed_interval"),
     "fixed_interval"),
    (lambda lits: lits[0][2]["template"]["mappings"]["properties"]["host"].update(time_series_dimension="yes"),
     "boolean"),
    (lambda lits: lits[3][2]["downsampling"][0].update(config={"fixed_interval": "1h"}), "config"),
])
def test_the_check_catches_a_wrong_body(node_modules, tmp_path, break_it, expect):
    plan = plan_jobs([dict(DOWNSAMPLEABLE[1], id=DOWNSAMPLEABLE[0])])[0]
    lits = _literals(plan)
    break_it(lits)
    r = _tsc(node_modules, tmp_path, lits)
    assert r.returncode != 0 and expect in r.stdout, r.stdout


def test_the_emulators_data_stream_answers_match_elastics_response_types(node_modules, tmp_path):
    """What the emulator answers to the reads migration-plan makes has the shape Elasticsearch's types say."""
    import warnings

    from elasticsearch import Elasticsearch

    from es_rollup_emulator import EmulatorThread
    from es_rollup_emulator.seed_migration import seed

    with EmulatorThread(version="9.1.0", auto_trigger=False) as emu:  # the types follow the newest server
        emu.seed_rollup_usage()
        seed(emu)
        es = Elasticsearch(emu.url)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            answers = [("IndicesGetDataStreamResponse", "GET _data_stream", es.indices.get_data_stream(name="*").body),
                       ("IndicesGetIndexTemplateResponse", "GET _index_template", es.indices.get_index_template().body),
                       ("RollupGetJobsResponse", "GET _rollup/job/_all", es.rollup.get_jobs(id="_all").body)]
    assert answers[0][2]["data_streams"]
    # Elasticsearch sends time_series.temporal_ranges for a TSDS (GetDataStreamAction.DataStreamInfo#toXContent,
    # since 8.3) but the specification's IndicesDataStream does not list it: the one field left out of the check.
    for ds in answers[0][2]["data_streams"]:
        assert "temporal_ranges" in ds.pop("time_series")
    r = _tsc(node_modules, tmp_path, answers)
    assert r.returncode == 0, r.stdout[-6000:]
