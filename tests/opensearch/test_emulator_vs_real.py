"""The emulator's OpenSearch dialect held to the real node: the same requests replayed against a fresh
real OpenSearch 2.19.4 node and the emulator (``EmulatorThread(distribution="opensearch")``); their
status codes, body shapes (keys and JSON types, recursively), error types and reasons, and the job
documents' ``_version`` (every write counts) must be the same."""

from __future__ import annotations

import json
import urllib.error
import urllib.request

import pytest

# Once a year: an enabled job must not reach its first scheduled run during the replay (the plugin then
# writes metadata_id into the job, which bumps _version on the real node only).
CRON = {"cron": {"expression": "0 0 1 1 *", "timezone": "UTC"}}


def job(enabled: bool = False, page_size: int = 100, target: str = "cmp-tgt") -> dict:
    return {"rollup": {"enabled": enabled, "schedule": CRON, "description": "replay", "source_index": "cmp-src",
                       "target_index": target, "page_size": page_size, "delay": 0, "continuous": True,
                       "dimensions": [{"date_histogram": {"source_field": "ts", "fixed_interval": "1h", "timezone": "UTC"}},
                                      {"terms": {"source_field": "host"}}],
                       "metrics": [{"source_field": "v", "metrics": [{"sum": {}}, {"max": {}}]}]}}


J = "/_plugins/_rollup/jobs"


def seq(prev: dict) -> str:
    """if_seq_no/if_primary_term of the latest GET of j1 in this replay."""
    return f"?if_seq_no={prev['get']['_seq_no']}&if_primary_term={prev['get']['_primary_term']}"


# (name, method, path (or a function of the replay's earlier answers), body)
STEPS = [
    ("info", "GET", "/", None),
    ("list before any job", "GET", f"{J}?size=10&from=0", None),
    ("stop missing, no config index", "POST", f"{J}/nope/_stop", None),
    ("start missing, no config index", "POST", f"{J}/nope/_start", None),
    ("get missing, no config index", "GET", f"{J}/nope", None),
    ("explain missing, no config index", "GET", f"{J}/nope/_explain", None),
    ("delete missing, no config index", "DELETE", f"{J}/nope", None),
    ("put j1", "PUT", f"{J}/j1", job()),
    ("put j1 again without seq", "PUT", f"{J}/j1", job()),
    ("get j1", "GET", f"{J}/j1", None),
    ("explain j1 never run", "GET", f"{J}/j1/_explain", None),
    ("list", "GET", f"{J}?size=10&from=0", None),
    ("stop missing", "POST", f"{J}/nope/_stop", None),
    ("start missing", "POST", f"{J}/nope/_start", None),
    ("get missing", "GET", f"{J}/nope", None),
    ("explain missing", "GET", f"{J}/nope/_explain", None),
    ("delete missing", "DELETE", f"{J}/nope", None),
    ("stop never started", "POST", f"{J}/j1/_stop", None),
    ("start", "POST", f"{J}/j1/_start", None),
    ("start again", "POST", f"{J}/j1/_start", None),
    ("get", "GET", f"{J}/j1", None),
    ("update guarded", "PUT", lambda p: f"{J}/j1{seq(p)}", job(enabled=True, page_size=50)),
    ("update with the old seq", "PUT", lambda p: f"{J}/j1{seq(p)}", job(enabled=True, page_size=60)),
    ("get", "GET", f"{J}/j1", None),
    ("update of the target index", "PUT", lambda p: f"{J}/j1{seq(p)}", job(enabled=True, target="cmp-other")),
    ("stop with wait_for_completion and timeout", "POST", f"{J}/j1/_stop?wait_for_completion=true&timeout=30s", None),
    ("stop with timeout", "POST", f"{J}/j1/_stop?timeout=30s", None),
    ("stop, legacy path", "POST", "/_opendistro/_rollup/jobs/j1/_stop", None),
    ("stop again", "POST", f"{J}/j1/_stop", None),
    ("Elasticsearch stop path", "POST", "/_rollup/job/j1/_stop?wait_for_completion=true&timeout=30s", None),
    ("Elasticsearch get path", "GET", "/_rollup/job/j1", None),
    ("get", "GET", f"{J}/j1", None),
    ("put j2 enabled", "PUT", f"{J}/j2", job(enabled=True, target="cmp-tgt2")),
    ("explain both", "GET", f"{J}/j1,j2/_explain", None),
    ("delete j1", "DELETE", f"{J}/j1", None),
    ("delete j1 again", "DELETE", f"{J}/j1", None),
    ("stop deleted", "POST", f"{J}/j1/_stop", None),
    ("explain deleted", "GET", f"{J}/j1/_explain", None),
    ("delete j2", "DELETE", f"{J}/j2", None),
    ("list after deletes", "GET", f"{J}?size=10&from=0", None),
]


def call(url: str, method: str, path: str, body) -> tuple[int, object]:
    req = urllib.request.Request(url + path, method=method, data=json.dumps(body).encode() if body is not None else None,
                                 headers={"Content-Type": "application/json", "Accept": "application/json"})
    try:
        with urllib.request.urlopen(req, timeout=30) as resp:
            return resp.status, json.loads(resp.read() or b"null")
    except urllib.error.HTTPError as e:
        return e.code, json.loads(e.read() or b"null")


def replay(url: str) -> list[tuple[str, int, object]]:
    prev: dict = {}
    out = []
    for name, method, path, body in STEPS:
        status, answer = call(url, method, path(prev) if callable(path) else path, body)
        if name == "get":
            prev["get"] = answer
        out.append((name, status, answer))
    return out


def shape(x):
    if isinstance(x, dict):
        return {k: shape(v) for k, v in x.items()}
    if isinstance(x, list):
        return [shape(v) for v in x]
    return type(x).__name__


def facts(answer) -> dict:
    """What must be equal beyond the shape: error type/reason, acknowledged, result, the job's
    enabled flag and _version, explain's entries (null or not)."""
    out: dict = {}
    if isinstance(answer, dict):
        err = answer.get("error")
        out["error"] = {k: err.get(k) for k in ("type", "reason")} if isinstance(err, dict) else err
        for k in ("acknowledged", "result", "_version", "total_rollups"):
            if k in answer:
                out[k] = answer[k]
        if isinstance(answer.get("rollup"), dict):
            out["enabled"] = answer["rollup"].get("enabled")
            out["page_size"] = answer["rollup"].get("page_size")
    return out


@pytest.fixture(scope="module")
def fresh_node(opensearch_node):
    """A second real node, so the replay begins before any rollup job exists (no config index)."""
    from devtools.harness.opensearch import OpenSearchNode

    node = OpenSearchNode().start()
    try:
        yield node
    finally:
        node.stop()


@pytest.fixture
def os_emulator():
    from es_rollup_emulator import EmulatorThread

    emu = EmulatorThread(distribution="opensearch", version="2.19.4").start()
    yield emu
    emu.close()


def test_the_emulator_answers_as_the_real_node(fresh_node, os_emulator):
    real, emu = replay(fresh_node.url), replay(os_emulator.url)
    mismatches = []
    for (name, rs, ra), (_, es, ea) in zip(real, emu):
        if name == "info":  # values differ (uuid, build), the shape and the distribution may not
            ra, ea = {"version": shape(ra["version"]), "d": ra["version"]["distribution"]}, \
                     {"version": shape(ea["version"]), "d": ea["version"]["distribution"]}
        if (rs, shape(ra), facts(ra)) != (es, shape(ea), facts(ea)):
            mismatches.append(f"{name}: real {rs} {json.dumps(ra)[:400]}\n      emulator {es} {json.dumps(ea)[:400]}")
    assert not mismatches, "\n".join(mismatches)
    assert len(real) == len(STEPS) >= 40
