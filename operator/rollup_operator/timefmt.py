"""The one time format the operator writes: RFC 3339 in UTC to the second (``2026-12-03T13:05:24Z``),
as Kubernetes' ``metav1.Time`` holds it (conditions, status times, Event timestamps)."""

from __future__ import annotations

import datetime as dt


def rfc3339(ts: float | None = None) -> str:
    """``ts`` (epoch seconds; now when None) as RFC 3339 UTC, whole seconds."""
    t = dt.datetime.fromtimestamp(ts, dt.timezone.utc) if ts is not None else dt.datetime.now(dt.timezone.utc)
    return t.strftime("%Y-%m-%dT%H:%M:%SZ")
