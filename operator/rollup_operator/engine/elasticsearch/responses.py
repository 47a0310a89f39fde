"""Every Elasticsearch answer checked against the shape the rollup API documents, before it is used.

Pure: no I/O, no client objects beyond reading an error's status, headers and body. A 2xx answer
that does not have the documented shape becomes a transient ``UnexpectedResponse`` failure with
a short description of what was wrong (never "the job is absent", which would make the operator
create it, and never a stale observation that keeps a Ready=True alive). Numbers that Kubernetes
cannot store (stats outside int64) are clamped or dropped, and the job is still observed.

Error answers are reduced to what an Elasticsearch server said: its error ``type`` and ``reason``,
truncated, and only once the answer carries ``X-Elastic-Product: Elasticsearch``. A body from a
server that is not Elasticsearch (any URL a tenant can put in ``spec.url``) is never repeated,
so the operator cannot be used to read other services of the cluster network.

What the documented shapes are: ``docs/reference/elasticsearch-rollup-api.md`` ("GET _rollup/job").
"""

from __future__ import annotations

import math
import re
from typing import Any, Mapping

from rollup_operator.job.observations import JOB_STATES, NOT_ELASTICSEARCH, STAT_FIELDS, UNAVAILABLE, UNEXPECTED_RESPONSE, Failure, JobObserved

INT64_MAX, INT64_MIN = 2**63 - 1, -(2**63)
#: Longest error ``type`` / ``reason`` (and description of a bad answer) put in status or events.
MAX_TYPE, MAX_REASON = 80, 400
#: ``version.number`` of GET /, e.g. "8.17.0", "9.1.0-SNAPSHOT".
_VERSION = re.compile(r"^\d{1,4}\.\d{1,4}(\.\d{1,4})?([-+][0-9A-Za-z.-]{1,40})?$")
#: Acknowledgement key of each action's 200 answer.
ACK_KEY = {"start": "started", "stop": "stopped", "create": "acknowledged", "delete": "acknowledged"}
_CONFIG_STRINGS = ("id", "index_pattern", "rollup_index", "cron", "timeout")
_CONTROL = re.compile(r"[\x00-\x1f\x7f]+")


def clip(text: Any, limit: int = MAX_REASON) -> str:
    """A server's text made safe for a one-line status message: control characters collapsed
    to a space, at most ``limit`` characters (an ellipsis marks a cut)."""
    s = _CONTROL.sub(" ", str(text)).strip()
    return s if len(s) <= limit else s[: limit - 1] + "…"


def _kind(value: Any) -> str:
    """How to name a JSON value's type in a description."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, (int, float)):
        return "a number"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, list):
        return "an array"
    if isinstance(value, dict):
        return "an object"
    return type(value).__name__


def unexpected(what: str, detail: str) -> Failure:
    return Failure(UNEXPECTED_RESPONSE, clip(f"unexpected answer to {what}: {detail}"))


# --- GET _rollup/job/_all -----------------------------------------------------------------------


def stat_value(value: Any) -> int | None:
    """A stat as Kubernetes can store it: an integer within int64 (clamped), or None to drop it."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    if isinstance(value, float):
        if not math.isfinite(value):
            return INT64_MAX if value > 0 and not math.isnan(value) else None
        if value != int(value):
            return None
        value = int(value)
    clamped: int = max(INT64_MIN, min(INT64_MAX, value))
    return clamped


def stats(raw: Mapping[str, Any]) -> dict[str, int]:
    """The documented stats, each an int64 (clamped); anything else is dropped."""
    out = {}
    for k in STAT_FIELDS:
        v = raw.get(k)
        if type(v) is int and INT64_MIN <= v <= INT64_MAX:  # the usual case, quickly
            out[k] = v
            continue
        v = stat_value(v)
        if v is not None:
            out[k] = v
    return out


def _config_problem(cfg: Mapping[str, Any]) -> str | None:
    for k in _CONFIG_STRINGS:
        if k in cfg and not isinstance(cfg[k], str):
            return f"config.{k} is {_kind(cfg[k])}, not a string"
    if "page_size" in cfg and (isinstance(cfg["page_size"], bool) or not isinstance(cfg["page_size"], int)):
        return f"config.page_size is {_kind(cfg['page_size'])}, not an integer"
    groups = cfg.get("groups")
    if groups is not None:
        if not isinstance(groups, dict):
            return f"config.groups is {_kind(groups)}, not an object"
        for g, v in groups.items():
            if not isinstance(v, dict):
                return f"config.groups.{g} is {_kind(v)}, not an object"
    metrics = cfg.get("metrics")
    if metrics is not None:
        if not isinstance(metrics, list):
            return f"config.metrics is {_kind(metrics)}, not an array"
        for m in metrics:
            if not (isinstance(m, dict) and isinstance(m.get("field"), str) and isinstance(m.get("metrics"), list)
                    and all(isinstance(x, str) for x in m["metrics"])):
                return "config.metrics has an entry that is not {field: string, metrics: [string]}"
    return None


def job_entry(entry: Mapping[str, Any]) -> JobObserved | Failure:
    """One entry of ``jobs`` (whose ``config.id`` is known to be a string), checked."""
    cfg = entry["config"]
    status = entry.get("status")
    state = status.get("job_state") if isinstance(status, dict) else None
    raw_stats = entry.get("stats")
    if raw_stats is None:
        raw_stats = {}
    problem = _config_problem(cfg)
    if problem is None:
        if not isinstance(status, dict):
            problem = f"status is {_kind(status)}, not an object"
        elif not isinstance(state, str):
            problem = f"status.job_state is {_kind(state)}, not a string"
        elif state not in JOB_STATES:
            problem = f"status.job_state [{clip(state, 40)}] is none of {', '.join(sorted(JOB_STATES))}"
        elif not isinstance(raw_stats, dict):
            problem = f"stats is {_kind(raw_stats)}, not an object"
    if problem is not None:
        return unexpected(f"GET _rollup/job/_all (job [{clip(cfg['id'], 80)}])", problem)
    assert isinstance(state, str)  # no problem: the checks above found a string
    return JobObserved(state=state, stats=stats(raw_stats), config=cfg)


def job_list(body: Any) -> dict[str, JobObserved | Failure] | Failure:
    """The answer to ``GET _rollup/job/_all``: every job by id, or why the answer cannot be used.

    A malformed answer as a whole (no ``jobs`` array, an entry without a string ``config.id``)
    is one failure for every job: the operator cannot tell which jobs exist, so none is "absent".
    An entry that names its job but is wrong inside (unknown ``job_state``...) is a failure for
    that job only; the others are observed as usual.
    """
    what = "GET _rollup/job/_all"
    if not isinstance(body, dict):
        return unexpected(what, f"the body is {_kind(body)}, not an object with a jobs array")
    jobs = body.get("jobs")
    if not isinstance(jobs, list):
        return unexpected(what, "the body has no jobs array" if "jobs" not in body else f"jobs is {_kind(jobs)}, not an array")
    out: dict[str, JobObserved | Failure] = {}
    for i, entry in enumerate(jobs):
        if not isinstance(entry, dict):
            return unexpected(what, f"jobs[{i}] is {_kind(entry)}, not an object")
        cfg = entry.get("config")
        if not isinstance(cfg, dict) or not isinstance(cfg.get("id"), str) or not cfg["id"]:
            return unexpected(what, f"jobs[{i}] has no config.id string, so the job it describes is unknown")
        jid = cfg["id"]
        out[jid] = unexpected(what, f"job [{clip(jid, 80)}] is listed twice") if jid in out else job_entry(entry)
    return out


# --- GET / ----------------------------------------------------------------------------------------


def server_version(body: Any) -> str | Failure:
    """``version.number`` of ``GET /``, checked to look like a version ("8.17.0")."""
    what = "GET /"
    if not isinstance(body, dict):
        return unexpected(what, f"the body is {_kind(body)}, not an object")
    version = body.get("version")
    if not isinstance(version, dict):
        return unexpected(what, f"version is {_kind(version)}, not an object")
    number = version.get("number")
    if not isinstance(number, str):
        return unexpected(what, f"version.number is {_kind(number)}, not a string")
    if not _VERSION.match(number):
        return unexpected(what, f"version.number [{clip(number, 40)}] is not a version such as 8.17.0")
    return number


# --- the 200 answers of start / stop / create / delete ---------------------------------------------


def acknowledged(api: str, body: Any) -> Failure | None:
    """None if an action's 200 answer is the documented ``{"<key>": true}``, else a failure."""
    key = ACK_KEY.get(api)
    if key is None:
        return None
    if isinstance(body, dict) and body.get(key) is True:
        return None
    if not isinstance(body, dict):
        got = f"{_kind(body)}"
    elif key not in body:
        got = f"an object without {key}"
    else:
        got = f"{key} {'false' if body[key] is False else 'as ' + _kind(body[key])}"
    return unexpected(f"the {api} call", f'expected {{"{key}": true}}, got {got}')


# --- error answers -----------------------------------------------------------------------------------


def from_elasticsearch(headers: Mapping[str, str] | None) -> bool:
    """The product check the client makes on 2xx answers, applied to an error answer too."""
    if not headers:
        return False
    value = headers.get("x-elastic-product") or headers.get("X-Elastic-Product")
    return value == "Elasticsearch"


def foreign_error(status: int) -> Failure:
    """An error answer without ``X-Elastic-Product``: a proxy, a load balancer, or a server that is
    not Elasticsearch. Only its status code is reported; its body is never repeated."""
    text = (f"the server answered HTTP {status} without the X-Elastic-Product header, so the answer is not "
            f"from Elasticsearch (its body is not shown)")
    if status in (429, 502, 503, 504):  # what proxies in front of Elasticsearch answer while it is away
        return Failure(UNAVAILABLE, f"{text}; retrying")
    return Failure(NOT_ELASTICSEARCH, f"{text}; check spec.url")


#: The bracketed identities Elasticsearch names in its security errors ("unable to authenticate user
#: [bob]", "is unauthorized for user [bob] ... run as [alice]", "api key [id]"): status and Events are
#: read by the namespace's viewers, so no username or key id of the connection's credentials goes there.
_IDENTITY = re.compile(r"(?i)\b(user|run as|principal|api key|api_key|apikey|token|realm)(\s*)\[[^\]]*\]")


def redact_identity(text: str) -> str:
    """``text`` with every user, run-as, API key, token and realm name replaced by ``[…]``."""
    return _IDENTITY.sub(lambda m: f"{m.group(1)}{m.group(2)}[…]", text)


def error_parts(body: Any) -> tuple[str, str]:
    """(type, reason) of an Elasticsearch error body, truncated; ("", "") when it has neither.

    Reads the error envelope (with the innermost ``caused_by`` added to the reason, since a parse
    error's own reason only names the outer field), the ``{"error": "<text>"}`` of an unknown
    path, and DELETE's ``task_failures``. Nothing else of the body is kept.
    """
    etype, reason = "", ""
    if isinstance(body, dict):
        err = body.get("error")
        if isinstance(err, dict):
            etype, reason = str(err.get("type") or ""), str(err.get("reason") or "")
            cause, innermost, depth = err.get("caused_by"), None, 0
            while isinstance(cause, dict) and depth < 20:
                innermost, cause, depth = cause, cause.get("caused_by"), depth + 1
            detail = str((innermost or {}).get("reason") or "")
            if detail and detail not in reason:
                reason = f"{reason}: {detail}"
        elif isinstance(err, str):
            reason = err
        else:
            failures = body.get("task_failures")
            if isinstance(failures, list) and failures and isinstance(failures[0], dict):
                r = failures[0].get("reason")
                if isinstance(r, dict):
                    etype, reason = str(r.get("type") or ""), str(r.get("reason") or "")
    return clip(etype, MAX_TYPE), clip(redact_identity(reason), MAX_REASON)
