"""Job configs to adopt: every ``rollup.put_job`` of Elasticsearch's YAML REST tests, plus generated ones.

``reference_jobs()`` reads ``../shared/reference/elasticsearch-rollup-rest-tests`` (None when
absent): each put_job body with the indices its file's steps create, the id made unique per
file and test. ``generated_jobs()`` covers terms, histogram, every metric, time zones, delays,
calendar and fixed intervals, timeouts, page sizes and comma-separated index patterns, over the
indices of :data:`GENERATED_INDICES`. ``load(es, jobs)`` creates what the jobs need and PUTs them
with the official client; it returns the ids the server accepted and the refusals.
"""

from __future__ import annotations

import itertools
import json
from pathlib import Path
from typing import Any

import yaml

REPO_ROOT = Path(__file__).resolve().parents[2]
REFERENCE = REPO_ROOT.parent / "shared" / "reference" / "elasticsearch-rollup-rest-tests"


def _steps(section: Any):
    for step in section or []:
        if isinstance(step, dict) and isinstance(step.get("do"), dict):
            yield step["do"]


def reference_jobs() -> list[dict] | None:
    if not REFERENCE.is_dir():
        return None
    jobs = []
    for path in sorted(REFERENCE.glob("*.yml")):
        docs = [d for d in yaml.safe_load_all(path.read_text()) if isinstance(d, dict)]
        setup = next((d["setup"] for d in docs if "setup" in d), [])
        indices = [(do["indices.create"]["index"], (do["indices.create"].get("body") or {}))
                   for do in _steps(setup) if "indices.create" in do]
        for doc in docs:
            for test, section in doc.items():
                if test == "teardown":
                    continue
                own = [] if test == "setup" else [(do["indices.create"]["index"], do["indices.create"].get("body") or {})
                                                   for do in _steps(section) if "indices.create" in do]
                for n, do in enumerate(d for d in _steps(section) if "rollup.put_job" in d):
                    call = do["rollup.put_job"]
                    body = call.get("body")
                    if isinstance(body, str):
                        try:
                            body = json.loads(body)
                        except ValueError:
                            continue
                    if not isinstance(body, dict):  # refusals (catch) included: the server decides
                        continue
                    job_id = f"{path.stem}_{n}_{test[:40]}_{call['id']}".replace(" ", "_")
                    jobs.append({"id": job_id, "body": body, "indices": indices + own, "origin": f"{path.name}: {test}"})
    return jobs


GENERATED_INDICES = {
    "gen-metrics-a": {"properties": {"ts": {"type": "date"}, "@timestamp": {"type": "date"}, "host": {"type": "keyword"},
                                     "region": {"type": "keyword"}, "status": {"type": "integer"},
                                     "value": {"type": "double"}, "bytes": {"type": "long"},
                                     "latency": {"type": "float"}, "requests_total": {"type": "long"}}},
    "gen-metrics-b": {"properties": {"ts": {"type": "date"}, "@timestamp": {"type": "date"}, "host": {"type": "keyword"},
                                     "region": {"type": "keyword"}, "status": {"type": "integer"},
                                     "value": {"type": "double"}, "bytes": {"type": "long"},
                                     "latency": {"type": "float"}, "requests_total": {"type": "long"}}},
}

_INTERVALS = [("fixed_interval", v) for v in ("30s", "1m", "90s", "5m", "1h", "2h", "1d", "7d")] + \
             [("calendar_interval", v) for v in ("1m", "minute", "1h", "hour", "1d", "day", "1w", "week", "1M",
                                                 "month", "1q", "1y")]
_ZONES = [None, "UTC", "Europe/Paris", "America/New_York", "+05:30", "-08:00", "Asia/Kathmandu"]
_DELAYS = [None, "30s", "1m", "2h", "1d"]
_METRICS = [["min"], ["max"], ["sum"], ["avg"], ["value_count"], ["min", "max", "sum", "avg", "value_count"],
            ["max", "min"]]
_PATTERNS = ["gen-metrics-a", "gen-metrics-*", "gen-metrics-a,gen-metrics-b", "gen-metrics-b"]


def generated_jobs(count: int = 48) -> list[dict]:
    """Deterministic configs cycling through every axis (each value appears at least once)."""
    jobs = []
    for i in range(count):
        kind, interval = _INTERVALS[i % len(_INTERVALS)]
        dh: dict[str, Any] = {"field": "ts" if i % 3 else "@timestamp", kind: interval}
        zone, delay = _ZONES[i % len(_ZONES)], _DELAYS[i % len(_DELAYS)]
        if zone:
            dh["time_zone"] = zone
        if delay:
            dh["delay"] = delay
        groups: dict[str, Any] = {"date_histogram": dh}
        if i % 2 == 0:
            groups["terms"] = {"fields": [["host"], ["host", "region"], ["region", "status"]][i % 3]}
        if i % 5 == 1:
            groups["histogram"] = {"fields": [["bytes"], ["latency", "status"]][i % 2], "interval": [1, 100, 1024][i % 3]}
        fields = ["value", "bytes", "latency", "requests_total"]
        metrics = [{"field": f, "metrics": _METRICS[(i + k) % len(_METRICS)]} for k, f in enumerate(fields[: 1 + i % 4])]
        body: dict[str, Any] = {
            "index_pattern": _PATTERNS[i % len(_PATTERNS)],
            "rollup_index": f"gen-rollup-{i % 4}",
            "cron": ["*/30 * * * * ?", "0 0 * * * ?", "0 */5 * * * ?", "0 0 1 * * ?"][i % 4],
            "page_size": [1000, 1, 500, 10000][i % 4],
            "groups": groups,
            "metrics": metrics if i % 11 else [],
        }
        if i % 4 == 3:
            body["timeout"] = ["30s", "1m", "500ms"][i % 3]
        jobs.append({"id": f"Gen_{i:02d}.{kind[:3]}-{interval}", "body": body,
                     "indices": list(GENERATED_INDICES.items()), "origin": f"generated {i}"})
    return jobs


def load(es, jobs: list[dict]) -> tuple[list[str], list[str]]:
    """Create the jobs' indices and PUT the jobs; (accepted ids, refusal messages)."""
    from elasticsearch import ApiError

    made = set()
    for job in jobs:
        for name, body in job["indices"]:
            if name in made:
                continue
            made.add(name)
            mappings = body if "properties" in (body or {}) else (body or {}).get("mappings") or {}
            try:
                es.indices.create(index=name, mappings=mappings)
            except ApiError as e:
                if e.meta.status != 400:  # already there (another file's setup made it): keep the first
                    raise
    accepted, refused = [], []
    for job in jobs:
        try:
            es.rollup.put_job(id=job["id"], **job["body"])
            accepted.append(job["id"])
        except ApiError as e:
            refused.append(f"{job['origin']} ({job['id']}): {e.meta.status} {e.message}")
    return accepted, refused


def all_jobs() -> list[dict]:
    return list(itertools.chain(reference_jobs() or [], generated_jobs()))
