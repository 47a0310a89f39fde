"""Elasticsearch error bodies, built the way the server's REST layer builds them.

An :class:`ESError` is a small model of a Java exception chain: a ``type`` (the snake-cased
exception class name), a ``reason`` (its message), an optional ``caused_by`` chain, optional
``metadata`` (extra fields such as ``additional_unsuccessful_credentials``) and optional
``header`` (e.g. ``WWW-Authenticate``). :meth:`ESError.body` renders the envelope::

    {"error": {"root_cause": [...], "type": T, "reason": R[, "caused_by": {...}]}, "status": S}

``root_cause`` follows ``ElasticsearchException.guessRootCauses``: an Elasticsearch exception
descends through causes that are Elasticsearch exceptions; an ``x_content_parse_exception``
descends through parse exceptions and Elasticsearch exceptions; anything else is its own root
cause. Root-cause entries carry no ``caused_by``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

# How an exception type behaves in guessRootCauses.
ES = "es"  # extends ElasticsearchException
XCONTENT = "xcontent"  # XContentParseException
PLAIN = "plain"  # any other Java exception (IllegalArgumentException, RuntimeException, ...)


@dataclass
class ESError(Exception):
    type: str
    reason: str | None
    status: int = 500
    kind: str = ES
    caused_by: "ESError | None" = None
    metadata: dict[str, Any] = field(default_factory=dict)
    header: dict[str, list[str]] = field(default_factory=dict)

    def __post_init__(self) -> None:
        Exception.__init__(self, f"{self.status} {self.type}: {self.reason}")

    # -- rendering ----------------------------------------------------------------------------
    def root_causes(self) -> list["ESError"]:
        node = self
        while True:
            cause = node.caused_by
            if cause is None:
                return [node]
            if node.kind == ES and cause.kind == ES:
                node = cause
            elif node.kind == XCONTENT and cause.kind in (ES, XCONTENT):
                node = cause
            else:
                return [node]

    def _fields(self, with_cause: bool, stack_trace: bool) -> dict[str, Any]:
        out: dict[str, Any] = {"type": self.type, "reason": self.reason}
        out.update(self.metadata)
        if with_cause and self.caused_by is not None:
            out["caused_by"] = self.caused_by._fields(True, stack_trace)
        if self.header:
            out["header"] = {k: (v[0] if len(v) == 1 else list(v)) for k, v in self.header.items()}
        if stack_trace:
            out["stack_trace"] = _fake_stack_trace(self)
        return out

    def body(self, error_trace: bool = False) -> dict[str, Any]:
        roots = [rc._fields(False, False) for rc in self.root_causes()]
        err = {"root_cause": roots}
        err.update(self._fields(True, error_trace))
        return {"error": err, "status": self.status}


def _fake_stack_trace(err: ESError) -> str:
    java = {
        "illegal_argument_exception": "java.lang.IllegalArgumentException",
        "runtime_exception": "java.lang.RuntimeException",
        "illegal_state_exception": "java.lang.IllegalStateException",
        "x_content_parse_exception": "org.elasticsearch.xcontent.XContentParseException",
        "status_exception": "org.elasticsearch.ElasticsearchStatusException",
        "timeout_exception": "org.elasticsearch.ElasticsearchTimeoutException",
        "resource_not_found_exception": "org.elasticsearch.ResourceNotFoundException",
        "security_exception": "org.elasticsearch.ElasticsearchSecurityException",
        "exception": "org.elasticsearch.ElasticsearchException",
    }.get(err.type, "org.elasticsearch.ElasticsearchException")
    return f"{java}: {err.reason}\n\tat org.elasticsearch.emulator(Emulated.java)\n"


class SimpleError(Exception):
    """An error answered with ES's *simple* body ``{"error": "<msg>", "status": S}``.

    Used by the REST dispatcher for unknown paths (400), wrong methods (405) and unsupported
    content types (406)."""

    def __init__(self, status: int, message: str, headers: dict[str, str] | None = None):
        super().__init__(message)
        self.status = status
        self.message = message
        self.headers = headers or {}

    def body(self) -> dict[str, Any]:
        return {"error": self.message, "status": self.status}


class RawResponse(Exception):
    """Short-circuit with an arbitrary JSON body (e.g. DELETE's ``task_failures`` answer)."""

    def __init__(self, status: int, body: Any):
        super().__init__(f"raw {status}")
        self.status = status
        self.body = body


# -- constructors used throughout the emulator ---------------------------------------------------
def illegal_argument(reason: str, caused_by: ESError | None = None) -> ESError:
    return ESError("illegal_argument_exception", reason, 400, PLAIN, caused_by)


def parse_error(reason: str, caused_by: ESError | None = None) -> ESError:
    return ESError("x_content_parse_exception", reason, 400, XCONTENT, caused_by)


def validation_failed(messages: list[str]) -> ESError:
    text = "Validation Failed: " + "".join(f"{i}: {m};" for i, m in enumerate(messages, 1))
    return ESError("action_request_validation_exception", text, 400, PLAIN)


def not_found(reason: str) -> ESError:
    return ESError("resource_not_found_exception", reason, 404, ES)


def status_exception(reason: str, status: int) -> ESError:
    return ESError("status_exception", reason, status, ES)


def generic_exception(reason: str, status: int = 500) -> ESError:
    """``ElasticsearchException`` renders as type ``exception``."""
    return ESError("exception", reason, status, ES)


def runtime_exception(reason: str) -> ESError:
    return ESError("runtime_exception", reason, 500, PLAIN)


def timeout_exception(reason: str, status: int) -> ESError:
    return ESError("timeout_exception", reason, status, ES)


def security_exception(reason: str, status: int, **kw: Any) -> ESError:
    return ESError("security_exception", reason, status, ES, **kw)
