"""``rollup-operator migration-plan``: per job, whether and how it becomes downsampling."""

from __future__ import annotations

from typing import Any

import argparse
import re
import json
import sys
import warnings

import yaml

from rollup_operator.migration import plan as migration
from rollup_operator.cli.es_target import EXIT_EXPORT, CommandError, add_command, client, read_jobs, target_from_args


class _NoAliases(yaml.SafeDumper):
    def ignore_aliases(self, data: Any) -> bool:  # the plan repeats bodies on purpose; print them in full
        return True


def register(sub: Any) -> None:
    p = add_command(
        sub, "migration-plan",
        help="say for each rollup job whether and how it can become downsampling, with the requests to send",
        description=(
            "Read GET _rollup/job/_all and, for each job's source, GET _data_stream/<source> and GET <source> "
            "(mappings and settings; skipped with a note when not permitted), and print per job: verdict, blockers "
            "with reasons, dimensions, metrics, what has no counterpart, and the bodies of PUT _index_template, "
            "PUT _ilm/policy (downsample action) and the data stream lifecycle alternative. Sends nothing else."
        ),
        job_help="plan only this job (repeat for several)",
        outputs=("yaml", "json", "markdown"),
        output_help="yaml/json: the plan with the request bodies; markdown: a report table (default: yaml)",
    )
    p.add_argument("--no-source-check", action="store_true",
                   help="plan from the job configs alone (no reads of the source indices)")
    p.set_defaults(handler=run)


def source_facts(es: Any, pattern: str) -> migration.SourceFacts:
    """What the source of a job looks like: data streams, index mode, dimensions, metric types."""
    import elasticsearch

    parts = [p.strip() for p in pattern.split(",") if p.strip()]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            streams: list[dict[str, Any]] = []
            covered = 0
            for part in parts:
                try:
                    found = es.indices.get_data_stream(name=part).body.get("data_streams") or []
                except elasticsearch.NotFoundError:
                    found = []
                streams += found
                covered += bool(found)
            try:
                indices = es.indices.get(index=pattern, ignore_unavailable=True, allow_no_indices=True).body
            except elasticsearch.NotFoundError:
                indices = {}
        except (elasticsearch.AuthorizationException, elasticsearch.AuthenticationException) as e:
            return migration.SourceFacts(note=f"source not checked: reading it was refused ({e.meta.status}); "
                                              "the user needs view_index_metadata on it")
        except elasticsearch.ApiError as e:
            return migration.SourceFacts(note=f"source not checked: the server answered {e.meta.status}")
    is_ds = bool(parts) and covered == len(parts)  # every part of the pattern names (or matches) a data stream
    # index_mode is in GET _data_stream only on recent versions; time_series.temporal_ranges since 8.3,
    # and the backing indices' own index.mode always
    modes = {n: (((i.get("settings") or {}).get("index") or {}).get("mode")) for n, i in indices.items()}
    time_series = all(s.get("index_mode") == "time_series" or "time_series" in s
                      or any(modes.get(x.get("index_name")) == "time_series" for x in s.get("indices") or [])
                      for s in streams) if streams else None
    dims: set[str] = set()
    types: dict[str, str] = {}
    metric_types: dict[str, str] = {}
    ds_interval = None
    for idx in indices.values():
        _walk(idx.get("mappings", {}).get("properties") or {}, "", dims, types, metric_types)
        iv = (((idx.get("settings") or {}).get("index") or {}).get("downsample") or {}).get("interval")
        ds_interval = ds_interval or iv
    return migration.SourceFacts(data_stream=is_ds, time_series=time_series if is_ds else False,
                                 dimensions=tuple(sorted(dims)) if is_ds else None, field_types=types,
                                 metric_types=metric_types, downsample_interval=ds_interval)


def _walk(props: dict[str, Any], prefix: str, dims: set[str], types: dict[str, Any], metrics: dict[str, Any]) -> None:
    for name, spec in props.items():
        if not isinstance(spec, dict):
            continue
        path = prefix + name
        if "properties" in spec:
            _walk(spec["properties"], path + ".", dims, types, metrics)
        if "type" in spec:
            types[path] = spec["type"]
        if spec.get("time_series_dimension"):
            dims.add(path)
        if spec.get("time_series_metric"):
            metrics[path] = spec["time_series_metric"]


_ROW_BREAKING = re.compile("[\x00-\x1f\x7f\x85\u2028\u2029]")


def markdown(plans: list[dict[str, Any]]) -> str:
    def cell(s: str) -> str:
        # A row is one line: every line break (CR, LF, NEL, U+2028/9...) and control character becomes a
        # space, '|' is escaped, and '\\' before it too so that "\\|" cannot close the cell.
        text = _ROW_BREAKING.sub(" ", str(s))
        return text.replace("\\", "\\\\").replace("|", "\\|")

    rows = ["| job | interval | dimensions | metrics | verdict | blockers |", "|---|---|---|---|---|---|"]
    for p in plans:
        metrics = ", ".join(f"{m['field']} ({m['type']})" for m in p["metrics"]) or "—"
        blockers = "; ".join(f"**{b['reason']}**: {b['message']}" + (f" → {b['proposal']}" if b.get("proposal") else "")
                             for b in p["blockers"]) or "—"
        rows.append("| " + " | ".join(cell(x) for x in (
            p["jobId"], p["interval"], ", ".join(p["dimensions"]) or "—", metrics,
            p["verdict"] + (f" ({p['fixedInterval']} after {p['after']})" if p["downsampleable"] else ""), blockers)) + " |")
    ok = sum(1 for p in plans if p["downsampleable"])
    checked = "" if all(p["sourceChecked"] for p in plans) else " Sources not checked for some jobs: see the JSON output."
    return ("# Rollup to downsampling: migration plan\n\n" + "\n".join(rows) +
            f"\n\n**{ok} of {len(plans)} jobs can move to downsampling; {len(plans) - ok} blocked.**{checked}\n")


def run(args: argparse.Namespace) -> int:
    t = target_from_args(args)
    es = client(t)
    jobs = read_jobs(es, t, opensearch="the migration plan applies to Elasticsearch only (rollups to Elasticsearch "
                                         "downsampling); OpenSearch keeps its rollups (docs/engines.md)")
    missing = sorted(set(args.job) - {j["config"]["id"] for j in jobs})
    if missing:
        raise CommandError(f"no such rollup job on the server: {', '.join(missing)}", EXIT_EXPORT)
    configs = [j["config"] for j in jobs if not args.job or j["config"]["id"] in args.job]
    facts = {} if args.no_source_check else {p: source_facts(es, p) for p in {str(c["index_pattern"]) for c in configs}}
    plans = sorted(migration.plan_jobs(configs, facts), key=lambda p: p["jobId"])
    if args.output == "markdown":
        sys.stdout.write(markdown(plans))
    elif args.output == "json":
        sys.stdout.write(json.dumps({"jobs": plans}, indent=2) + "\n")
    else:
        sys.stdout.write(yaml.dump({"jobs": plans}, Dumper=_NoAliases, sort_keys=False, width=120))
    return 0
