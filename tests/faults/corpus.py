"""A generated corpus of malformed RollupJob / ElasticsearchConnection objects.

Each case is built from a valid object by one mutation of one field: a wrong type, an unknown enum
value, a missing required field, a 1 MB string, an invalid duration or format, or a change of an
immutable field (applied as a patch to a valid object). ``field`` is the path the API server's 422
message must name.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass
from typing import Any

MB = "x" * (1 << 20)
DROP = object()

VALID_CONFIG = {
    "indexPattern": "rollup-source", "rollupIndex": "rollup-target", "cron": "*/30 * * * * ?", "pageSize": 100,
    "groups": {"dateHistogram": {"field": "timestamp", "fixedInterval": "1h"}},
    "metrics": [{"field": "value", "metrics": ["min", "max"]}],
}
# names a connection that does not exist: valid objects created for the immutability cases stay inert
VALID_JOB = {"connectionRef": {"name": "corpus-nowhere"}, "desiredState": "stopped", "config": VALID_CONFIG}
VALID_CONN = {"url": "http://127.0.0.1:9200"}


@dataclass
class Case:
    id: str
    plural: str           # rollupjobs | elasticsearchconnections
    category: str
    field: str            # what the 422 message must name
    body: dict | None = None       # for a create
    base: dict | None = None       # for an update: create this valid spec first ...
    patch: dict | None = None      # ... then apply this merge patch
    metadata: dict | None = None


def _set(d: dict, path: str, value: Any) -> dict:
    d = copy.deepcopy(d)
    keys = path.split(".")
    cur = d
    for k in keys[:-1]:
        if isinstance(cur, list):
            cur = cur[int(k)]
        else:
            cur = cur.setdefault(k, {})
    last = keys[-1]
    if isinstance(cur, list):
        cur[int(last)] = value
    elif value is DROP:
        cur.pop(last, None)
    else:
        cur[last] = value
    return d


def _job(cid, category, path, value, field=None) -> Case:
    spec = _set(VALID_JOB, path, value)
    return Case(cid, "rollupjobs", category, field or "spec." + path.replace(".0.", "[0].").replace("config.metrics.0", "config.metrics[0]"),
                body=spec)


def _conn(cid, category, path, value, field=None) -> Case:
    return Case(cid, "elasticsearchconnections", category, field or "spec." + path, body=_set(VALID_CONN, path, value))


def corpus() -> list[Case]:
    c: list[Case] = []
    # --- RollupJob: wrong types -------------------------------------------------------------
    for path, value in [("desiredState", 42), ("desiredState", True), ("connectionRef", "es"), ("connectionRef.name", 7),
                        ("jobId", 123), ("jobId", ["a"]), ("stop", "fast"), ("stop.timeout", 30),
                        ("stop.waitForCompletion", "yes"), ("backoff", []), ("backoff.initial", 1), ("deletionPolicy", 1),
                        ("suspend", "true"), ("config", "cfg"), ("config.pageSize", "ten"), ("config.metrics", {"field": "v"}),
                        ("config.groups.histogram", {"fields": "host", "interval": 5})]:
        field = "spec.config.groups.histogram.fields" if path == "config.groups.histogram" else None
        c.append(_job(f"job-type-{path}-{type(value).__name__}", "wrong type", path, value, field))
    c.append(Case("job-type-spec-string", "rollupjobs", "wrong type", "spec", body="stopped"))  # type: ignore[arg-type]
    # --- unknown enum values ---------------------------------------------------------------
    for path, value in [("desiredState", "paused"), ("desiredState", "STARTED"), ("desiredState", ""),
                        ("deletionPolicy", "Orphan"), ("config.metrics.0.metrics", ["median"])]:
        field = "spec.config.metrics[0].metrics[0]" if "metrics" in path else None
        c.append(_job(f"job-enum-{path}-{value or 'empty'}", "unknown enum value", path, value, field))
    # --- missing required fields -----------------------------------------------------------
    c.append(Case("job-missing-spec", "rollupjobs", "missing required", "spec", body=None))
    for path, field in [("desiredState", None), ("connectionRef", None), ("connectionRef.name", None),
                        ("config.indexPattern", None), ("config.rollupIndex", None), ("config.cron", None),
                        ("config.groups", None), ("config.groups.dateHistogram", None),
                        ("config.groups.dateHistogram.field", None)]:
        c.append(_job(f"job-missing-{path}", "missing required", path, DROP, field))
    c.append(_job("job-missing-metrics-list", "missing required", "config.metrics", [{"field": "v"}], "spec.config.metrics[0].metrics"))
    c.append(_job("job-missing-terms-fields", "missing required", "config.groups.terms", {}, "spec.config.groups.terms.fields"))
    c.append(_job("job-missing-hist-interval", "missing required", "config.groups.histogram", {"fields": ["v"]},
                  "spec.config.groups.histogram.interval"))
    # --- huge strings (1 MB) ---------------------------------------------------------------
    for path in ("jobId", "connectionRef.name", "desiredState", "stop.timeout", "backoff.max", "config.cron",
                 "config.indexPattern", "config.groups.dateHistogram.field"):
        c.append(_job(f"job-huge-{path}", "1 MB string", path, MB))
    c.append(Case("job-huge-annotation", "rollupjobs", "1 MB string", "metadata.annotations", body=VALID_JOB,
                  metadata={"annotations": {"note": MB}}))
    # --- invalid durations -----------------------------------------------------------------
    for path, value in [("stop.timeout", "soon"), ("stop.timeout", "0s"), ("stop.timeout", "-1s"), ("stop.timeout", "1.5s"),
                        ("stop.timeout", "10 s"), ("stop.timeout", "1y"), ("stop.timeout", ""), ("backoff.initial", "fast"),
                        ("backoff.max", "0ms"), ("config.timeout", "5 minutes")]:
        c.append(_job(f"job-duration-{path}-{value or 'empty'}", "invalid duration", path, value))
    # --- invalid formats / ranges ----------------------------------------------------------
    for path, value in [("jobId", "a/b"), ("jobId", "a b"), ("jobId", "a*"), ("jobId", "a,b"), ("jobId", ""),
                        ("connectionRef.name", ""), ("config.pageSize", 0), ("config.pageSize", -5),
                        ("config.groups.terms", {"fields": []}), ("config.groups.histogram", {"fields": ["v"], "interval": 0}),
                        ("config.metrics.0.metrics", []),
                        ("config.metrics.0.metrics", ["min", "max", "sum", "avg", "value_count", "min"])]:
        field = {"config.groups.terms": "spec.config.groups.terms.fields",
                 "config.groups.histogram": "spec.config.groups.histogram.interval",
                 "config.metrics.0.metrics": "spec.config.metrics[0].metrics"}.get(path)
        c.append(_job(f"job-format-{path}-{value!s:.12}", "invalid format/range", path, value, field))
    both = _set(VALID_JOB, "config.groups.dateHistogram.calendarInterval", "1d")
    c.append(Case("job-format-both-intervals", "rollupjobs", "invalid format/range", "calendarInterval or fixedInterval", body=both))
    neither = _set(VALID_JOB, "config.groups.dateHistogram.fixedInterval", DROP)
    c.append(Case("job-format-no-interval", "rollupjobs", "invalid format/range", "calendarInterval or fixedInterval", body=neither))
    # --- immutable fields changed ----------------------------------------------------------
    base = {**VALID_JOB, "jobId": "fixed"}
    for cid, patch, field in [("job-immutable-jobId", {"spec": {"jobId": "other"}}, "spec.jobId"),
                              ("job-immutable-jobId-removed", {"spec": {"jobId": None}}, "spec.jobId"),
                              ("job-immutable-connectionRef", {"spec": {"connectionRef": {"name": "other"}}}, "spec.connectionRef"),
                              ("job-immutable-config", {"spec": {"config": {"rollupIndex": "elsewhere"}}}, "spec.config"),
                              ("job-immutable-config-removed", {"spec": {"config": None}}, "spec.config")]:
        c.append(Case(cid, "rollupjobs", "immutable field changed", field, base=base, patch=patch))
    c.append(Case("job-immutable-jobId-added", "rollupjobs", "immutable field changed", "spec.jobId",
                  base=VALID_JOB, patch={"spec": {"jobId": "late"}}))
    # --- ElasticsearchConnection -----------------------------------------------------------
    c.append(Case("conn-missing-spec", "elasticsearchconnections", "missing required", "spec", body=None))
    c.append(Case("conn-missing-url", "elasticsearchconnections", "missing required", "spec.url", body={}))
    for path, value, cat in [("url", "ftp://es:9200", "invalid format/range"), ("url", "http://user:pw@es:9200", "invalid format/range"),
                             ("url", "es:9200", "invalid format/range"), ("url", "http://" + MB, "1 MB string"),
                             ("url", 5, "wrong type"), ("urls", "http://es:9200", "wrong type"),
                             ("urls", ["http://es:9200"] * 40, "invalid format/range"), ("urls", ["nope"], "invalid format/range"),
                             ("auth.basic", {}, "missing required"), ("auth.basic.secretRef.name", "", "invalid format/range"),
                             ("auth.apiKey", {"secretRef": {}}, "missing required"), ("auth.basic.secretRef.name", MB, "1 MB string"),
                             ("tls.insecureSkipVerify", "yes", "wrong type"), ("tls.caSecretRef", {}, "missing required"),
                             ("requestTimeout", "soon", "invalid duration"), ("requestTimeout", "0s", "invalid duration"),
                             # issue 20: ceilings a tenant cannot pass, names that cannot leave the namespace
                             ("requestTimeout", "1h", "invalid format/range"), ("requestTimeout", "99999999999999999999s", "invalid format/range"),
                             ("maxResponseSize", "1Gi", "invalid format/range"), ("maxResponseSize", "300Mi", "invalid format/range"),
                             ("auth.basic.secretRef.name", "../../o/secrets/es-creds", "invalid format/range"),
                             ("syncInterval", "1 minute", "invalid duration"), ("syncInterval", 60, "wrong type"),
                             ("maxConcurrentRequests", 0, "invalid format/range"), ("maxConcurrentRequests", 5000, "invalid format/range"),
                             ("maxConcurrentRequests", "64", "wrong type")]:
        field = {"auth.apiKey": "spec.auth.apiKey.secretRef.name", "auth.basic": "spec.auth.basic.secretRef",
                 "tls.caSecretRef": "spec.tls.caSecretRef.name"}.get(path)
        if path == "urls" and value == ["http://es:9200"] * 40:
            field = "spec.urls"
        c.append(_conn(f"conn-{path}-{value!s:.12}", cat, path, value, field))
    both_auth = {**VALID_CONN, "auth": {"basic": {"secretRef": {"name": "a"}}, "apiKey": {"secretRef": {"name": "b"}}}}
    c.append(Case("conn-auth-both", "elasticsearchconnections", "invalid format/range", "spec.auth", body=both_auth))
    return c
