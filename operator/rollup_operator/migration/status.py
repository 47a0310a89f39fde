"""A RollupMigration's status from a decision, and the Event its transition deserves. Pure: ``now`` is passed in.

``phases`` lists each phase reached (``True``, with ``startedAt``/``completedAt``) and the one being
worked on (``False``, with its reason, what it awaits and ``startedAt``); timestamps carry over from
the previous status. Conditions: Ready (the cut-over is done), Reconciling (the operator is moving,
or waiting on ILM or the rollup job), Stalled (a human must act: a blocker, a refusal, a difference,
the guardrail), and one per phase reached, each with ``observedGeneration``.
"""

from __future__ import annotations

from typing import Any, Mapping

from rollup_operator.job.status import (READY_CONDITION, ready_reason, RECONCILING_CONDITION, STALLED_CONDITION, condition,
                                         merge_conditions)
from rollup_operator.migration.phases import PHASES, READY, RECONCILING, STALLED, Decision

Event = tuple[str, str, str]  # (type, reason, message)


def _index(phase: str | None) -> int:
    return PHASES.index(phase) if phase in PHASES else -1


_DONE = {
    "Approved": "approved (spec.approved, or the annotation rollup.esops.dev/approve)",
    "Provisioned": "the index template (simulated first) and the ILM policy are current, and the data stream's write index uses the policy",
    "RunningSideBySide": "the rollup index and the downsampled indices cover an overlapping window (status.coverage)",
    "Verified": "the rollup search and the downsampled indices agree within the tolerance (status.verification)",
}


def _done_message(name: str, d: Decision) -> str:
    if name == "Planned":
        return str((d.plan or {}).get("summary") or "planned")
    if name == "CutOver":
        return d.message or "cut over"
    return _DONE.get(name, name)


def build(generation: int, d: Decision, previous: Mapping[str, Any], now: str, **extra: Any) -> dict[str, Any]:
    prev_phases = {p.get("name"): p for p in previous.get("phases") or []}
    reached = _index(d.phase)
    phases: list[dict[str, Any]] = []
    for name in PHASES[: reached + 1]:
        old = prev_phases.get(name) or {}
        done = old.get("message") if old.get("status") == "True" else None
        entry = {"name": name, "status": "True", "reason": name, "message": done or _done_message(name, d),
                 "startedAt": old.get("startedAt") or now,
                 "completedAt": old.get("completedAt") if old.get("status") == "True" and old.get("completedAt") else now}
        if name == "Provisioned" and extra.get("created"):
            entry["created"] = list(extra["created"])  # what this phase made on the server
        phases.append(entry)
    if reached + 1 < len(PHASES):
        name = PHASES[reached + 1]
        old = prev_phases.get(name) or {}
        entry = {"name": name, "status": "False", "reason": d.reason or "InProgress", "message": d.message or f"{name} in progress",
                 "startedAt": old.get("startedAt") or now}
        if d.awaiting:
            entry["awaiting"] = d.awaiting
        phases.append(entry)
    ready_msg = d.message or (f"awaiting {d.awaiting}" if d.awaiting else f"phase {d.phase or 'none'} reached")
    wanted = [
        condition(READY_CONDITION, d.state == READY, d.reason or "InProgress", ready_msg, generation),
        condition(RECONCILING_CONDITION, d.state == RECONCILING, d.reason or "InProgress", ready_msg, generation),
        condition(STALLED_CONDITION, d.state == STALLED, d.reason or "NotStalled", ready_msg if d.state == STALLED else "", generation),
    ] + [condition(name, True, name, f"{name} reached", generation) for name in PHASES[: reached + 1]]
    status: dict[str, Any] = {
        "observedGeneration": generation,
        "phase": d.phase or "Pending",
        "phases": phases,
        "conditions": merge_conditions(previous.get("conditions"), wanted, now),
        "message": ready_msg[:32768],
    }
    if d.awaiting:
        status["awaiting"] = d.awaiting
    if d.plan is not None:
        status["plan"] = {k: v for k, v in d.plan.items() if k != "requests"}
    for k, v in extra.items():
        if v is not None:
            status[k] = v
    return status


def transitions(previous: Mapping[str, Any], status: Mapping[str, Any], d: Decision) -> list[Event]:
    """The Events of this pass: one per phase newly reached (in order), then one for a new stop
    (Stalled, or awaiting an approval); none while nothing changed."""
    before = _index(previous.get("phase"))
    after = _index(status.get("phase"))
    prev_reason = ready_reason(previous)
    out: list[Event] = [("Normal", PHASES[i], d.message if i == after and d.state == READY else f"{PHASES[i]} reached")
                        for i in range(before + 1, after + 1)]
    if d.state == STALLED and prev_reason != d.reason:
        out.append(("Warning", d.reason, d.message))
    elif d.reason in ("AwaitingApproval", "AwaitingCutOverApproval") and prev_reason != d.reason:
        out.append(("Normal", d.reason, d.message))
    return out
