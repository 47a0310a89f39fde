"""A small runner for Elasticsearch's YAML REST tests, executed through the official client.

Each YAML file holds an optional ``setup`` (and ``teardown``) section and named tests; each
section is a list of steps:

* ``do``: one API call (``rollup.*`` from the REST spec JSON files, plus the few ``indices.*``
  calls the rollup tests use), with ``catch``, ``headers``, ``warnings``, ``allowed_warnings``
  (and their ``_regex`` forms);
* assertions: ``match``, ``is_true``, ``is_false``, ``length``, ``set``, ``gt``/``gte``/``lt``/``lte``;
* ``skip`` / ``requires``: ``features`` / ``test_runner_features`` (we support the ones listed
  in :data:`SUPPORTED_FEATURES`), ``cluster_features: ["gte_vX.Y.Z"]`` and ``version`` ranges.

Calls go through ``Elasticsearch.perform_request`` with the official client, so headers,
product check, compatibility media types and error classes are the client's own.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import quote

import yaml
from elasticsearch import ApiError, Elasticsearch

SUPPORTED_FEATURES = {"headers", "allowed_warnings", "allowed_warnings_regex", "warnings", "warnings_regex",
                      "stash_in_path", "stash_in_key"}

# Non-rollup APIs the rollup YAML tests use (the spec folder only ships the rollup ones).
BUILTIN_SPECS: dict[str, dict[str, Any]] = {
    "indices.create": {"paths": [{"path": "/{index}", "methods": ["PUT"], "parts": ["index"]}]},
    "indices.delete": {"paths": [{"path": "/{index}", "methods": ["DELETE"], "parts": ["index"]}]},
    "indices.get": {"paths": [{"path": "/{index}", "methods": ["GET"], "parts": ["index"]}]},
    "indices.exists": {"paths": [{"path": "/{index}", "methods": ["HEAD"], "parts": ["index"]}]},
    "indices.get_mapping": {"paths": [{"path": "/{index}/_mapping", "methods": ["GET"], "parts": ["index"]},
                                      {"path": "/_mapping", "methods": ["GET"], "parts": []}]},
    "indices.put_template": {"paths": [{"path": "/_template/{name}", "methods": ["PUT", "POST"], "parts": ["name"]}]},
    "info": {"paths": [{"path": "/", "methods": ["GET"], "parts": []}]},
}

CATCHES = {
    "bad_request": lambda s: s == 400,
    "unauthorized": lambda s: s == 401,
    "forbidden": lambda s: s == 403,
    "missing": lambda s: s == 404,
    "request_timeout": lambda s: s == 408,
    "conflict": lambda s: s == 409,
    "unavailable": lambda s: s == 503,
    "request": lambda s: s >= 400 and s not in (400, 401, 403, 404, 408, 409),
}

_WARNING_RE = re.compile(r'"([^"]*)"')


class YamlTestFailure(AssertionError):
    pass


class YamlTestSkipped(Exception):
    pass


@dataclass
class YamlTest:
    file: str
    name: str
    steps: list[dict[str, Any]]
    setup: list[dict[str, Any]] = field(default_factory=list)
    teardown: list[dict[str, Any]] = field(default_factory=list)

    @property
    def id(self) -> str:
        return f"{Path(self.file).stem}::{self.name}"


def load_specs(spec_dir: Path | None) -> dict[str, dict[str, Any]]:
    specs = dict(BUILTIN_SPECS)
    if spec_dir is not None and spec_dir.is_dir():
        for f in sorted(spec_dir.glob("*.json")):
            for api, spec in json.loads(f.read_text()).items():
                specs[api] = {"paths": [
                    {"path": p["path"], "methods": p["methods"], "parts": list((p.get("parts") or {}).keys())}
                    for p in spec["url"]["paths"]]}
    return specs


def load_tests(path: Path) -> list[YamlTest]:
    docs = [d for d in yaml.safe_load_all(path.read_text()) if d]
    setup: list = []
    teardown: list = []
    tests = []
    for doc in docs:
        for name, steps in doc.items():
            if name == "setup":
                setup = steps or []
            elif name == "teardown":
                teardown = steps or []
            else:
                tests.append(YamlTest(str(path), name, steps or []))
    for t in tests:
        t.setup, t.teardown = setup, teardown
    return tests


def _version_tuple(v: str) -> tuple[int, ...]:
    return tuple(int(x) for x in re.findall(r"\d+", v)[:3])


class Runner:
    def __init__(self, client: Elasticsearch, specs: dict[str, dict[str, Any]], version: str):
        self.client = client
        self.specs = specs
        self.version = _version_tuple(version)
        self.stash: dict[str, Any] = {}
        self.last: Any = None

    # -- skip/requires ----------------------------------------------------------------------------
    def _check_skip(self, spec: dict[str, Any], requires: bool) -> None:
        features = spec.get("features") or spec.get("test_runner_features") or []
        if isinstance(features, str):
            features = [features]
        missing = [f for f in features if f not in SUPPORTED_FEATURES]
        if missing:
            raise YamlTestSkipped(f"runner lacks features {missing}")
        for cf in spec.get("cluster_features") or []:
            m = re.match(r"gte_v(\d+\.\d+\.\d+)", cf)
            if m:
                have = self.version >= _version_tuple(m.group(1))
                if requires and not have:
                    raise YamlTestSkipped(f"requires {cf}: {spec.get('reason', '')}")
                if not requires and have:
                    raise YamlTestSkipped(f"skipped on {cf}: {spec.get('reason', '')}")
        if not requires and "version" in spec:
            for rng in str(spec["version"]).split(","):
                lo, _, hi = rng.strip().partition("-")
                lo_v = _version_tuple(lo) if lo.strip() else (0,)
                hi_v = _version_tuple(hi) if hi.strip() else (999,)
                if rng.strip() == "all" or lo_v <= self.version <= hi_v:
                    raise YamlTestSkipped(f"skipped for version {spec['version']}: {spec.get('reason', '')}")

    # -- stash ------------------------------------------------------------------------------------
    def _resolve(self, value: Any) -> Any:
        if isinstance(value, str):
            if value.startswith("$") and value[1:] in self.stash:
                return self.stash[value[1:]]
            return re.sub(r"\$\{(\w+)\}", lambda m: str(self.stash.get(m.group(1), m.group(0))), value)
        if isinstance(value, dict):
            return {self._resolve(k): self._resolve(v) for k, v in value.items()}
        if isinstance(value, list):
            return [self._resolve(v) for v in value]
        return value

    def _lookup(self, path: str) -> Any:
        if path in ("$body", ""):
            return self.last
        node = self.last
        parts = [p.replace("\\.", ".") for p in re.split(r"(?<!\\)\.", path)]
        for p in parts:
            p = self._resolve(p)
            if isinstance(node, list):
                try:
                    node = node[int(p)]
                except (ValueError, IndexError):
                    return None
            elif isinstance(node, dict):
                if p not in node:
                    return None
                node = node[p]
            else:
                return None
        return node

    # -- do ---------------------------------------------------------------------------------------
    def _call(self, do: dict[str, Any]) -> None:
        do = dict(do)
        catch = do.pop("catch", None)
        headers = dict(do.pop("headers", {}) or {})
        expected_warnings = list(do.pop("warnings", []) or [])
        allowed = list(do.pop("allowed_warnings", []) or [])
        expected_regex = [re.compile(r) for r in do.pop("warnings_regex", []) or []]
        allowed_regex = [re.compile(r) for r in do.pop("allowed_warnings_regex", []) or []]
        do.pop("node_selector", None)
        if len(do) != 1:
            raise YamlTestFailure(f"do section must have exactly one api, got {list(do)}")
        api, params = next(iter(do.items()))
        params = self._resolve(dict(params or {}))
        body = params.pop("body", None)
        spec = self.specs.get(api)
        if spec is None:
            raise YamlTestSkipped(f"api [{api}] has no spec")
        chosen = None
        for p in sorted(spec["paths"], key=lambda p: -len(p["parts"])):
            if all(part in params for part in p["parts"]):
                chosen = p
                break
        if chosen is None:
            raise YamlTestFailure(f"no path of [{api}] fits params {sorted(params)}")
        path = chosen["path"]
        for part in chosen["parts"]:
            value = params.pop(part)
            if isinstance(value, list):
                value = ",".join(value)
            path = path.replace("{" + part + "}", quote(str(value), safe=",*"))
        method = chosen["methods"][0]
        if method == "GET" and body is not None and "POST" in chosen["methods"]:
            method = "POST"
        query = {k: (json.dumps(v) if isinstance(v, bool) else v) for k, v in params.items()}
        query = {k: (v.lower() if v in ("true", "false", "True", "False") else v) for k, v in query.items()}
        req_headers = {"accept": "application/json"}
        if body is not None:
            req_headers["content-type"] = "application/json"
        req_headers.update({k.lower(): str(v) for k, v in headers.items()})
        status, resp_body, resp_headers = self._perform(method, path, query, req_headers, body)
        self._check_warnings(resp_headers, expected_warnings, allowed, expected_regex, allowed_regex)
        if catch is not None:
            if status < 400:
                raise YamlTestFailure(f"expected error [{catch}] but got {status}: {resp_body}")
            if catch in CATCHES:
                if not CATCHES[catch](status):
                    raise YamlTestFailure(f"expected [{catch}] but got status {status}: {resp_body}")
            elif catch.startswith("/") and catch.endswith("/"):
                text = resp_body if isinstance(resp_body, str) else json.dumps(resp_body)
                if not re.search(catch[1:-1].strip(), text):
                    raise YamlTestFailure(f"error body does not match {catch}: {text}")
            elif catch == "param":
                pass
            else:
                raise YamlTestFailure(f"unknown catch [{catch}]")
        elif status >= 400:
            raise YamlTestFailure(f"{method} {path} failed with {status}: {resp_body}")
        self.last = resp_body

    def _perform(self, method: str, path: str, query: dict[str, Any], headers: dict[str, str],
                 body: Any) -> tuple[int, Any, Any]:
        target = path
        if query:
            target += "?" + "&".join(f"{quote(str(k))}={quote(str(v), safe=',*')}" for k, v in query.items())
        try:
            resp = self.client.perform_request(method, target, headers=headers, body=body)
            return resp.meta.status, resp.body, resp.meta.headers
        except ApiError as e:
            return e.meta.status, e.body, e.meta.headers

    @staticmethod
    def _check_warnings(headers: Any, expected: list[str], allowed: list[str], expected_regex: list[re.Pattern],
                        allowed_regex: list[re.Pattern]) -> None:
        values = headers.getall("warning", []) if hasattr(headers, "getall") else (
            [headers["warning"]] if "warning" in headers else [])
        actual: list[str] = []
        for v in values:
            actual += _WARNING_RE.findall(v) or [v]
        missing = [w for w in expected if w not in actual]
        missing += [r.pattern for r in expected_regex if not any(r.search(a) for a in actual)]
        unexpected = [a for a in actual if a not in expected and a not in allowed
                      and not any(r.search(a) for r in expected_regex + allowed_regex)]
        if unexpected:
            raise YamlTestFailure(f"unexpected warning headers {unexpected}")
        if missing:
            raise YamlTestFailure(f"expected warning headers {missing} missing; got {actual}")

    # -- assertions -------------------------------------------------------------------------------
    def _match(self, path: str, expected: Any) -> None:
        actual = self._lookup(path)
        expected = self._resolve(expected)
        if isinstance(expected, str) and len(expected) > 1 and expected.startswith("/") and expected.endswith("/"):
            if not re.search(expected[1:-1].strip(), str(actual), re.X):
                raise YamlTestFailure(f"match {path}: {actual!r} does not match {expected}")
            return
        if not _equal(actual, expected):
            raise YamlTestFailure(f"match {path}: expected {json.dumps(expected)} but was {json.dumps(actual)}")

    def run_steps(self, steps: list[dict[str, Any]]) -> None:
        for step in steps:
            (kind, arg), = step.items()
            if kind == "skip":
                self._check_skip(arg, requires=False)
            elif kind == "requires":
                self._check_skip(arg, requires=True)
            elif kind == "do":
                self._call(arg)
            elif kind == "match":
                for path, expected in arg.items():
                    self._match(path, expected)
            elif kind == "is_true":
                v = self._lookup(arg)
                if v in (None, False, "false", 0, "", [], {}):
                    raise YamlTestFailure(f"is_true {arg}: was {v!r}")
            elif kind == "is_false":
                v = self._lookup(arg)
                if v not in (None, False, "false", 0, ""):
                    raise YamlTestFailure(f"is_false {arg}: was {v!r}")
            elif kind == "length":
                for path, n in arg.items():
                    v = self._lookup(path)
                    if v is None or len(v) != int(self._resolve(n)):
                        raise YamlTestFailure(f"length {path}: expected {n}, was {v!r}")
            elif kind == "set":
                for path, name in arg.items():
                    self.stash[name] = self._lookup(path)
            elif kind in ("gt", "gte", "lt", "lte"):
                for path, n in arg.items():
                    v, n = self._lookup(path), self._resolve(n)
                    ok = {"gt": v > n, "gte": v >= n, "lt": v < n, "lte": v <= n}[kind]
                    if not ok:
                        raise YamlTestFailure(f"{kind} {path}: {v} vs {n}")
            else:
                raise YamlTestSkipped(f"unsupported step [{kind}]")

    def run(self, test: YamlTest) -> None:
        # skip/requires anywhere at the start of setup or test apply to the whole test
        for step in list(test.setup) + list(test.steps):
            (kind, arg), = step.items()
            if kind in ("skip", "requires"):
                self._check_skip(arg, requires=kind == "requires")
        self.run_steps(test.setup)
        try:
            self.run_steps(test.steps)
        finally:
            if test.teardown:
                self.run_steps(test.teardown)


def _equal(a: Any, b: Any) -> bool:
    if isinstance(a, bool) or isinstance(b, bool):
        return a is b or a == b and type(a) is type(b)
    if isinstance(a, (int, float)) and isinstance(b, (int, float)):
        return float(a) == float(b)
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(_equal(a[k], b[k]) for k in a)
    if isinstance(a, list) and isinstance(b, list):
        return len(a) == len(b) and all(_equal(x, y) for x, y in zip(a, b))
    return a == b
