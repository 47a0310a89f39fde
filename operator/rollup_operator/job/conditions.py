"""Kubernetes-style conditions (metav1.Condition): Ready, Reconciling, Stalled.

``lastTransitionTime`` moves only when a condition's ``status`` changes, as the API conventions
ask; reason, message and observedGeneration are updated in place. Pure: ``now`` is passed in.
"""

from __future__ import annotations

from typing import Iterable, Mapping

READY, RECONCILING, STALLED = "Ready", "Reconciling", "Stalled"
ORDER = (READY, RECONCILING, STALLED)


def condition(type_: str, status: bool, reason: str, message: str, generation: int) -> dict:
    return {
        "type": type_,
        "status": "True" if status else "False",
        "reason": reason,
        "message": message,
        "observedGeneration": generation,
    }


def merge(previous: Iterable[Mapping] | None, wanted: Iterable[dict], now: str) -> list[dict]:
    """The condition list to write: ``wanted`` with transition times carried over from ``previous``."""
    prev = {c.get("type"): c for c in previous or ()}
    out = []
    for c in wanted:
        old = prev.get(c["type"])
        if old is not None and old.get("status") == c["status"] and old.get("lastTransitionTime"):
            ltt = old["lastTransitionTime"]
        else:
            ltt = now
        out.append({**c, "lastTransitionTime": ltt})
    return out


def get(conditions: Iterable[Mapping] | None, type_: str) -> Mapping | None:
    for c in conditions or ():
        if c.get("type") == type_:
            return c
    return None


def is_true(conditions: Iterable[Mapping] | None, type_: str) -> bool:
    c = get(conditions, type_)
    return bool(c) and c.get("status") == "True"
