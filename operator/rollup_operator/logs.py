"""Logging setup: plain text or one JSON object per line, with job, namespace and connection."""

from __future__ import annotations

import json
import logging
import sys
from typing import Any

_CONTEXT = ("job", "namespace", "connection")


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        out: dict[str, Any] = {
            "time": self.formatTime(record, "%Y-%m-%dT%H:%M:%S") + f".{int(record.msecs):03d}Z",
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
        }
        for key in _CONTEXT:
            value = getattr(record, key, None)
            if value is not None:
                out[key] = value
        # kopf's own records name the object they are about
        kopf_ref = getattr(record, "k8s_ref", None)
        if isinstance(kopf_ref, dict):
            out.setdefault("namespace", kopf_ref.get("namespace"))
            out.setdefault("object", kopf_ref.get("name"))
        if record.exc_info:
            out["exception"] = self.formatException(record.exc_info)
        return json.dumps(out, default=str)


class TextFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        base = super().format(record)
        ctx = " ".join(f"{k}={getattr(record, k)}" for k in _CONTEXT if getattr(record, k, None) is not None)
        return f"{base} [{ctx}]" if ctx else base


def setup(fmt: str = "text", level: str = "INFO") -> None:
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter() if fmt == "json" else TextFormatter("%(asctime)s %(levelname)-7s %(name)s: %(message)s"))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    # The transports log every request at INFO; keep them for debugging only.
    # httpx2 (lightkube's) would also log every Kubernetes request with its status, e.g. a Secret's 404 vs 200:
    # an existence oracle in the log (docs/security.md).
    for noisy in ("elastic_transport.transport", "urllib3", "kubernetes", "httpx2", "httpx"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
    if level.upper() != "DEBUG":
        # kopf logs every watch event's handler at INFO ("Handler ... succeeded"): noise at scale.
        logging.getLogger("kopf.objects").setLevel(logging.WARNING)
    # Marks a node dead after each refused connection; the job's own condition already says so.
    logging.getLogger("elastic_transport.node_pool").setLevel(logging.ERROR)
