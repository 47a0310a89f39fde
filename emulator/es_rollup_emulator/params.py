"""Parsing of REST parameters and values the way Elasticsearch parses them.

* :func:`parse_time_value` — ``TimeValue.parseTimeValue``: ``nanos``, ``micros``, ``ms``, ``s``,
  ``m``, ``h``, ``d``; ``-1`` and ``0`` without unit; no fractions, no negatives.
* :func:`parse_boolean` — ``RestRequest.paramAsBoolean``: only ``true``/``false``; an empty
  value means ``true``.
* :func:`suggest` — the "did you mean" suffix Elasticsearch appends to unknown fields and
  parameters (Lucene ``LevenshteinDistance`` > 0.5, best first).
* :func:`unrecognized_params_message` — ``BaseRestHandler.unrecognized``.
"""

from __future__ import annotations

import re
from typing import Iterable, NamedTuple

from .errors import ESError, PLAIN, illegal_argument

_UNITS = (("nanos", 1e-9), ("micros", 1e-6), ("ms", 1e-3), ("s", 1.0), ("m", 60.0), ("h", 3600.0), ("d", 86400.0))
_JAVA_LONG = re.compile(r"^[+-]?\d+$")
_JAVA_DOUBLE = re.compile(r"^[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?$")


class TimeValue(NamedTuple):
    seconds: float
    rep: str  # TimeValue.getStringRep(): number + unit as parsed, "-1" for minus one

    def __str__(self) -> str:
        return self.rep


def parse_time(value: str, setting: str) -> TimeValue:
    """Parse like ``TimeValue.parseTimeValue``; raise ``illegal_argument_exception`` like ES."""
    normalized = value.lower().strip()
    for suffix, _factor in _UNITS:
        if normalized.endswith(suffix):
            secs = parse_time_value(value, setting)
            n = int(normalized[: -len(suffix)].strip())
            return TimeValue(secs, "-1" if n < 0 else f"{n}{suffix}")
    secs = parse_time_value(value, setting)
    return TimeValue(secs, "-1" if secs < 0 else "0s")


def parse_time_value(value: str, setting: str) -> float:
    """Return seconds (``-1.0`` for ``-1``); raise ``illegal_argument_exception`` like ES."""
    normalized = value.lower().strip()
    for suffix, factor in _UNITS:
        if normalized.endswith(suffix):
            number = normalized[: -len(suffix)].strip()
            if _JAVA_LONG.match(number):
                n = int(number)
                if n < -1:
                    raise illegal_argument(
                        f"failed to parse setting [{setting}] with value [{value}] as a time value: "
                        "negative durations are not supported"
                    )
                return n * factor
            if _JAVA_DOUBLE.match(number):
                raise illegal_argument(
                    f"failed to parse [{value}], fractional time values are not supported"
                )
            raise illegal_argument(
                f"failed to parse [{value}]",
                ESError("number_format_exception", f'For input string: "{number}"', 400, PLAIN),
            )
    if normalized == "-1":
        return -1.0
    if normalized == "0":
        return 0.0
    raise illegal_argument(
        f"failed to parse setting [{setting}] with value [{value}] as a time value: "
        "unit is missing or unrecognized"
    )


def parse_boolean(value: str | None, default: bool) -> bool:
    if value is None:
        return default
    if value == "" or value == "true":
        return True
    if value == "false":
        return False
    raise illegal_argument(f"Failed to parse value [{value}] as only [true] or [false] are allowed.")


def levenshtein_similarity(a: str, b: str) -> float:
    """Lucene's ``LevenshteinDistance.getDistance``: 1 - edits / max(len)."""
    if not a and not b:
        return 1.0
    prev = list(range(len(b) + 1))
    for i, ca in enumerate(a, 1):
        cur = [i] + [0] * len(b)
        for j, cb in enumerate(b, 1):
            cur[j] = min(prev[j] + 1, cur[j - 1] + 1, prev[j - 1] + (ca != cb))
        prev = cur
    return 1.0 - prev[len(b)] / max(len(a), len(b))


def _ranked(value: str, candidates: Iterable[str]) -> list[str]:
    scored = [(levenshtein_similarity(value, c), c) for c in set(candidates)]
    scored = [s for s in scored if s[0] > 0.5]
    scored.sort(key=lambda s: (-s[0], s[1]))
    return [c for _, c in scored]


def suggest(value: str, candidates: Iterable[str]) -> str:
    keys = _ranked(value, candidates)
    if not keys:
        return ""
    if len(keys) == 1:
        return f" did you mean [{keys[0]}]?"
    return " did you mean any of [" + ", ".join(keys) + "]?"


def unrecognized_params_message(path: str, invalid: Iterable[str], candidates: Iterable[str]) -> str:
    invalid = sorted(invalid)
    candidates = list(candidates)
    parts = []
    for name in invalid:
        keys = _ranked(name, candidates)
        text = f"[{name}]"
        if keys:
            text += " -> did you mean " + (f"[{keys[0]}]" if len(keys) == 1 else "any of [" + ", ".join(keys) + "]") + "?"
        parts.append(text)
    plural = "s" if len(invalid) > 1 else ""
    return f"request [{path}] contains unrecognized parameter{plural}: " + ", ".join(parts)
