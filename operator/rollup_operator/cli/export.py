"""``rollup-operator export``, the pure part: jobs as ``GET _rollup/job/_all`` lists them -> manifests.

No I/O. :func:`export_documents` turns the server's job entries into an ElasticsearchConnection
(optional) and one RollupJob per job whose ``spec.config`` is the job's config translated so that
the operator's own comparison (:func:`rollup_operator.job.config.config_differences` applied to
:func:`rollup_operator.job.config.config_to_es` of it) finds no difference: adopting it is a no-op.
:func:`render_yaml` / :func:`render_json` print them for ``kubectl apply -f -``.
"""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import dataclass, field
from typing import Any, Iterable, Mapping

import yaml

from rollup_operator.job.config import InvalidSpec, config_differences, config_to_es
from rollup_operator.job.spec import API_VERSION, CONNECTION_KIND, JOB_KIND, job_spec_from_body

#: Longest name we emit: a DNS-1123 label (kubectl shows it, labels and events can carry it).
MAX_NAME = 63
_INVALID = re.compile(r"[^a-z0-9-]+")
#: What the CRD accepts for ``spec.config.timeout`` (see manifests/crds).
_CRD_TIMEOUT = re.compile(r"^[0-9]+(ms|s|m|h|d)$")


class ExportError(ValueError):
    """A job cannot be exported faithfully (the message says why)."""


# --- naming ------------------------------------------------------------------------------------


def _short_hash(job_id: str) -> str:
    return hashlib.sha256(job_id.encode()).hexdigest()[:6]


def base_name(job_id: str) -> str:
    """The DNS-1123 label a job id maps to before collisions are resolved ("" if nothing is left)."""
    name = _INVALID.sub("-", job_id.lower()).strip("-")
    name = re.sub(r"-{2,}", "-", name)
    return name[:MAX_NAME].strip("-")


def resource_names(job_ids: Iterable[str]) -> dict[str, str]:
    """A distinct, valid resource name for every job id.

    An id that is already a valid name keeps it. Any other id whose cleaned-up form is empty or
    taken (``Sensor_1`` and ``sensor-1``) gets ``-<6 hex of sha256(id)>``, so the names are stable
    from one export to the next and ``spec.jobId`` always carries the exact id.
    """
    ids = sorted(set(job_ids))
    names: dict[str, str] = {}
    taken: set[str] = set()
    exact = [i for i in ids if base_name(i) == i]
    for i in exact:  # ids that are valid names win their own name
        names[i] = i
        taken.add(i)
    bases: dict[str, list[str]] = {}
    for i in ids:
        if i not in names:
            bases.setdefault(base_name(i), []).append(i)
    for base, group in bases.items():
        for i in group:
            if base and len(group) == 1 and base not in taken:
                name = base
            else:
                stem = (base or "job")[: MAX_NAME - 7].strip("-") or "job"
                name = f"{stem}-{_short_hash(i)}"
            if name in taken:  # a sha256 prefix clash: refuse rather than guess
                raise ExportError(f"job ids {i!r} and another map to the resource name {name!r}; export them separately with --job")
            names[i] = name
            taken.add(name)
    return names


# --- config translation -----------------------------------------------------------------------


def config_from_es(es: Mapping[str, Any]) -> dict[str, Any]:
    """The inverse of :func:`config_to_es`: a job's config as GET shows it -> ``spec.config``."""
    groups = es.get("groups") or {}
    dh = groups.get("date_histogram") or {}
    out_dh: dict[str, Any] = {"field": dh.get("field")}
    if dh.get("calendar_interval"):
        out_dh["calendarInterval"] = dh["calendar_interval"]
    elif dh.get("fixed_interval"):
        out_dh["fixedInterval"] = dh["fixed_interval"]
    else:
        raise ExportError("groups.date_histogram has neither calendar_interval nor fixed_interval")
    if dh.get("delay"):
        out_dh["delay"] = dh["delay"]
    if dh.get("time_zone") and dh["time_zone"] != "UTC":
        out_dh["timeZone"] = dh["time_zone"]
    out_groups: dict[str, Any] = {"dateHistogram": out_dh}
    if (groups.get("terms") or {}).get("fields"):
        out_groups["terms"] = {"fields": list(groups["terms"]["fields"])}
    if (groups.get("histogram") or {}).get("fields"):
        h = groups["histogram"]
        out_groups["histogram"] = {"fields": list(h["fields"]), "interval": int(h["interval"])}
    cfg: dict[str, Any] = {
        "indexPattern": es.get("index_pattern"),
        "rollupIndex": es.get("rollup_index"),
        "cron": es.get("cron"),
        "pageSize": int(es.get("page_size") or 1000),
        "groups": out_groups,
    }
    if es.get("timeout") and es["timeout"] != "20s":
        cfg["timeout"] = es["timeout"]
    metrics = [{"field": m["field"], "metrics": list(m["metrics"])} for m in es.get("metrics") or []]
    if metrics:
        cfg["metrics"] = metrics
    return cfg


def checked_config(es: Mapping[str, Any]) -> dict[str, Any]:
    """:func:`config_from_es`, proven to compare equal the way the operator compares it."""
    cfg = config_from_es(es)
    if cfg.get("timeout") is not None and not _CRD_TIMEOUT.match(str(cfg["timeout"])):
        raise ExportError(f"timeout {cfg['timeout']!r} cannot be written in spec.config.timeout (the CRD takes e.g. 20s, 500ms)")
    for m in cfg.get("metrics") or []:
        if len(m["metrics"]) > 5:
            raise ExportError(f"metrics of field {m['field']!r} list more than the five kinds the CRD accepts")
    try:
        diffs = config_differences(config_to_es(cfg), es)
    except InvalidSpec as e:
        raise ExportError(str(e)) from None
    if diffs:
        raise ExportError(f"the translated config would differ from the job in {', '.join(diffs)}")
    return cfg


# --- documents ---------------------------------------------------------------------------------

DESIRED = {"started": "started", "indexing": "started", "stopped": "stopped"}


@dataclass
class Exported:
    """One document and the comment lines printed above it."""

    body: dict[str, Any]
    comments: list[str] = field(default_factory=list)


@dataclass
class ConnectionInfo:
    name: str
    url: str | None = None  # None: the connection exists already (--from-connection), not emitted
    auth: str | None = None  # None | "basic" | "apiKey"
    ca: bool = False
    insecure_skip_verify: bool = False


def _meta(name: str, namespace: str | None) -> dict[str, Any]:
    meta: dict[str, Any] = {"name": name}
    if namespace:
        meta["namespace"] = namespace
    return meta


def connection_document(conn: ConnectionInfo, namespace: str | None) -> Exported:
    secret = f"{conn.name}-credentials"
    spec: dict[str, Any] = {"url": conn.url}
    comments = [f"ElasticsearchConnection for {conn.url}. No credentials are exported."]
    stub: list[str] = []
    if conn.auth == "basic":
        spec["auth"] = {"basic": {"secretRef": {"name": secret}}}
        stub = ["stringData:", "  username: <fill in>", "  password: <fill in>"]
    elif conn.auth == "apiKey":
        spec["auth"] = {"apiKey": {"secretRef": {"name": secret}}}
        stub = ["stringData:", "  api_key: <fill in: encoded key, or id:key>"]
    if conn.ca:
        spec["tls"] = {"caSecretRef": {"name": f"{conn.name}-ca"}}
        comments += [f"Create the CA Secret first: kubectl create secret generic {conn.name}-ca --from-file=ca.crt=<your CA file>"
                     + (f" -n {namespace}" if namespace else "")]
    if conn.insecure_skip_verify:
        spec.setdefault("tls", {})["insecureSkipVerify"] = True
    if stub:
        ns_line = [f"  namespace: {namespace}"] if namespace else []
        comments += ["Fill in and apply this Secret first (the operator reads the credentials from it):", "---",
                     "apiVersion: v1", "kind: Secret", "metadata:", f"  name: {secret}", *ns_line, "type: Opaque", *stub]
    body = {"apiVersion": API_VERSION, "kind": CONNECTION_KIND, "metadata": _meta(conn.name, namespace), "spec": spec}
    return Exported(body, comments)


def job_document(entry: Mapping[str, Any], name: str, connection: str, namespace: str | None) -> Exported:
    es = dict(entry.get("config") or {})
    job_id = es.get("id")
    state = (entry.get("status") or {}).get("job_state", "stopped")
    cfg = checked_config(es)
    spec: dict[str, Any] = {"jobId": job_id, "connectionRef": {"name": connection}}
    comments = [f"rollup job {job_id!r}, {state} at export"]
    if state in DESIRED:
        spec["desiredState"] = DESIRED[state]
    else:
        # stopping/aborting: whatever we ask for, the operator would act (stop again) on adoption.
        spec["desiredState"] = "stopped"
        spec["suspend"] = True
        comments.append(f"The job was {state!r}, a passing state: exported suspended so that nothing is sent. "
                        "Check its state, set desiredState and remove suspend.")
    spec["deletionPolicy"] = "Retain"
    spec["config"] = cfg
    body: dict[str, Any] = {"apiVersion": API_VERSION, "kind": JOB_KIND, "metadata": _meta(name, namespace), "spec": spec}
    try:  # the same rules the operator applies to a stored RollupJob (and the CRD at admission)
        job_spec_from_body({**body, "metadata": {**body["metadata"], "namespace": namespace or "default", "generation": 1}})
    except InvalidSpec as e:
        raise ExportError(f"cannot be represented as a RollupJob: {e}") from None
    return Exported(body, comments)


def export_documents(jobs: Iterable[Mapping[str, Any]], *, connection: ConnectionInfo,
                     namespace: str | None = None, only: Iterable[str] | None = None) -> tuple[list[Exported], list[str]]:
    """(documents, errors): the connection first (when it has a URL), then one RollupJob per job.

    ``only`` limits the export to these ids (an id that is not on the server is an error). A job
    that cannot be exported faithfully is left out and named in ``errors``.
    """
    entries: dict[str, Mapping[str, Any]] = {}
    errors: list[str] = []
    for e in jobs:
        job_id = (e.get("config") or {}).get("id")
        if isinstance(job_id, str):
            entries[job_id] = e
        else:
            errors.append(f"a job without a config.id ({job_id!r}) cannot be exported")
    wanted = sorted(entries)
    if only:
        only = list(dict.fromkeys(only))
        errors += [f"job {i!r}: no such rollup job on the server" for i in only if i not in entries]
        wanted = [i for i in only if i in entries]
    names = resource_names(wanted)
    docs: list[Exported] = []
    if connection.url:
        docs.append(connection_document(connection, namespace))
    for job_id in wanted:
        try:
            docs.append(job_document(entries[job_id], names[job_id], connection.name, namespace))
        except ExportError as e:
            errors.append(f"job {job_id!r}: {e}")
    return docs, errors


#: Plain scalars that no YAML 1.1 or 1.2 reader takes for anything but a string: a letter or '_' first, then
#: letters, digits and ``_ . - /``, and not one of the words YAML 1.1 reads as a boolean or null. Anything
#: else (``y``, ``N``, ``1e3``, ``+1e3``, ``0o17``, ``.inf``, ``12:30``, ``2026-01-01``...) is quoted, since
#: Kubernetes' reader (YAML 1.1 rules) would take it for a bool, a number or a time where PyYAML does not.
_PLAIN = re.compile(r"^[A-Za-z_][A-Za-z0-9_./-]*$")
_YAML11_WORDS = frozenset("y yes n no true false on off null".split())


class _QuotingDumper(yaml.SafeDumper):
    pass


def _str(dumper: yaml.SafeDumper, value: str) -> yaml.ScalarNode:
    plain = bool(_PLAIN.match(value)) and value.lower() not in _YAML11_WORDS
    return dumper.represent_scalar("tag:yaml.org,2002:str", value, style=None if plain else '"')


_QuotingDumper.add_representer(str, _str)


def render_yaml(docs: list[Exported]) -> str:
    parts = []
    for d in docs:
        head = "".join(f"# {c}\n" if c else "#\n" for c in d.comments)
        parts.append(head + yaml.dump(d.body, Dumper=_QuotingDumper, sort_keys=False, default_flow_style=False,
                                      allow_unicode=True, width=1 << 30))
    return "---\n".join(parts)


def render_json(docs: list[Exported]) -> str:
    return json.dumps({"apiVersion": "v1", "kind": "List", "items": [d.body for d in docs]}, indent=2) + "\n"
