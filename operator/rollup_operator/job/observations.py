"""What the operator can learn about a rollup job, and what an action on it can come back with.

These are plain values: the gateway produces them from Elasticsearch answers, the connection
registry produces the :class:`Failure` kinds that come before any request (missing Secret, missing
connection), and the pure decision consumes them.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Union

# Job states as Elasticsearch reports them in GET _rollup/job (job_state).
STARTED, INDEXING, STOPPING, STOPPED, ABORTING = "started", "indexing", "stopping", "stopped", "aborting"
RUNNING_STATES = frozenset({STARTED, INDEXING})
# OpenSearch only (engine/opensearch/responses.py maps its init/started/stopped/finished/failed/retry):
# a one-shot job that rolled up its whole source and disabled itself; a job whose run failed (``reason``).
FINISHED, FAILED = "finished", "failed"
#: Every state Elasticsearch reports for a rollup job (``status.job_state``).
JOB_STATES = frozenset({STARTED, INDEXING, STOPPING, STOPPED, ABORTING})
#: The rollup job counters Elasticsearch reports (``stats``), shown as ``status.stats`` in camelCase.
STAT_FIELDS = (
    "pages_processed", "documents_processed", "rollups_indexed", "trigger_count",
    "index_time_in_ms", "index_total", "index_failures", "search_time_in_ms",
    "search_total", "search_failures", "processing_time_in_ms", "processing_total",
)
# Values of status.jobState that are not server states.
ABSENT, UNKNOWN = "absent", "unknown"


@dataclass(frozen=True)
class JobObserved:
    """The job exists on the server in ``state``."""

    state: str
    stats: dict[str, Any] = field(default_factory=dict, compare=False, hash=False)
    config: dict[str, Any] | None = field(default=None, compare=False, hash=False)
    #: Why the server says the job failed (state ``failed``).
    reason: str | None = field(default=None, compare=False, hash=False)
    #: (_seq_no, _primary_term) of the job document, where the server can update a job in place
    #: guarded by them (OpenSearch); None on Elasticsearch, whose rollup jobs cannot be updated.
    seq: tuple[int, int] | None = field(default=None, compare=False, hash=False)


@dataclass(frozen=True)
class JobAbsent:
    """The server answered and has no job with this id."""


# Failure kinds. ``transient`` ones are retried with backoff by the job itself; the others are
# "stalled" until something outside changes (a Secret, a privilege, the connection) and are
# re-checked by the connection's periodic sync.
UNAVAILABLE = "ElasticsearchUnavailable"
TLS_ERROR = "TLSError"
#: An answer larger than the connection's spec.maxResponseSize (bounded_node.py); retried, as the server may shrink.
RESPONSE_TOO_LARGE = "ResponseTooLarge"
UNAUTHORIZED = "Unauthorized"
FORBIDDEN = "Forbidden"
NOT_ELASTICSEARCH = "NotElasticsearch"
UNSUPPORTED_VERSION = "UnsupportedVersion"
#: spec.engine names an engine the server is not (e.g. opensearch on an Elasticsearch cluster).
WRONG_ENGINE = "WrongEngine"
CONNECTION_NOT_FOUND = "ConnectionNotFound"
INVALID_CONNECTION = "InvalidConnection"
#: A Secret the connection names cannot be used: it does not exist, or it does not opt in with the
#: label rollup.esops.dev/credentials: "true". One reason and one message for both, so that whoever
#: may edit a connection cannot learn through it whether a Secret they cannot read exists.
SECRET_NOT_ALLOWED = "SecretNotAllowed"
#: A Secret that opted in lacks the key the connection names (the Secret's other keys are not told).
SECRET_KEY_NOT_FOUND = "SecretKeyNotFound"
#: The operator's read of a Secret failed otherwise (its RBAC, the API server); says nothing of existence.
SECRET_UNREADABLE = "SecretUnreadable"
#: A 2xx answer without the shape the rollup API documents (see answers.py); retried.
UNEXPECTED_RESPONSE = "UnexpectedResponse"
TRANSIENT_FAILURES = frozenset({UNAVAILABLE, TLS_ERROR, UNEXPECTED_RESPONSE, RESPONSE_TOO_LARGE})


@dataclass(frozen=True)
class Failure:
    kind: str
    message: str

    @property
    def transient(self) -> bool:
        return self.kind in TRANSIENT_FAILURES


Observation = Union[JobObserved, JobAbsent, Failure]


# --- outcomes of actions ------------------------------------------------------------------------


@dataclass(frozen=True)
class Done:
    """The call succeeded (stopped/started/created/deleted)."""


@dataclass(frozen=True)
class StopTimedOut:
    """``_stop?wait_for_completion=true`` gave up waiting; the job is still stopping on the server."""

    state: str  # lower case, parsed from "State was [STOPPING]"


@dataclass(frozen=True)
class WrongState:
    """The server refused the call because of the job's current state (e.g. start while stopping)."""

    state: str
    message: str


@dataclass(frozen=True)
class Refused:
    """The server refused to create the job. ``reason`` is a condition reason."""

    reason: str  # RollupUsageRequired | InvalidConfig | JobIdReused
    message: str


Outcome = Union[Done, StopTimedOut, WrongState, Refused, JobAbsent, Failure]
