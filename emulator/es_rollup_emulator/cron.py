"""A small Quartz cron parser: when does a rollup job's schedule fire next?

Elasticsearch evaluates rollup crons in UTC with Quartz syntax::

    seconds minutes hours day-of-month month day-of-week [year]

Supported per field: ``*``, ``?`` (day fields), numbers, ranges ``a-b``, steps ``*/n``, ``a/n``,
``a-b/n``, lists ``a,b,c``, month names ``JAN``-``DEC`` and day names ``SUN``-``SAT`` (Quartz
numbering: 1 = Sunday .. 7 = Saturday). Not supported (the expression is then reported by
:func:`parse_cron` as unsupported and the job never fires automatically): ``L``, ``W``, ``#``.

Day matching follows Quartz: one of day-of-month / day-of-week must be ``?``; if neither is,
both must match.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

_MONTHS = {m: i for i, m in enumerate(
    ["JAN", "FEB", "MAR", "APR", "MAY", "JUN", "JUL", "AUG", "SEP", "OCT", "NOV", "DEC"], 1)}
_DAYS = {d: i for i, d in enumerate(["SUN", "MON", "TUE", "WED", "THU", "FRI", "SAT"], 1)}


class CronError(ValueError):
    pass


def _field(text: str, lo: int, hi: int, names: dict[str, int] | None = None,
           allow_question: bool = False) -> frozenset[int] | None:
    """Return the set of allowed values, or None for ``?`` (no constraint)."""
    text = text.strip().upper()
    if text == "?":
        if not allow_question:
            raise CronError("'?' can only be specified for day-of-month or day-of-week")
        return None
    values: set[int] = set()

    def num(tok: str) -> int:
        if names and tok in names:
            return names[tok]
        if not tok.isdigit():
            raise CronError(f"unsupported cron token [{tok}]")
        v = int(tok)
        if not lo <= v <= hi:
            raise CronError(f"value [{v}] out of range [{lo}-{hi}]")
        return v

    for part in text.split(","):
        step = 1
        stepped = "/" in part
        if stepped:
            part, step_text = part.split("/", 1)
            if not step_text.isdigit() or int(step_text) == 0:
                raise CronError(f"bad step [{step_text}]")
            step = int(step_text)
            if part == "":
                raise CronError("missing range before '/'")
        if part in ("*", "?"):
            start, end = lo, hi
        elif "-" in part:
            a, b = part.split("-", 1)
            start, end = num(a), num(b)
        else:
            start = num(part)
            end = hi if stepped else start
        if end < start:  # Quartz allows wrap-around ranges such as FRI-MON
            seq = list(range(start, hi + 1)) + list(range(lo, end + 1))
            values.update(seq[::step])
        else:
            values.update(range(start, end + 1, step))
    return frozenset(values)


@dataclass(frozen=True)
class CronSchedule:
    expression: str
    seconds: frozenset[int]
    minutes: frozenset[int]
    hours: frozenset[int]
    days_of_month: frozenset[int] | None
    months: frozenset[int]
    days_of_week: frozenset[int] | None  # Quartz numbering 1=SUN..7=SAT
    years: frozenset[int] | None

    def _day_ok(self, d: dt.datetime) -> bool:
        quartz_dow = (d.isoweekday() % 7) + 1  # Mon=1..Sun=7 -> Sun=1..Sat=7
        dom_ok = self.days_of_month is None or d.day in self.days_of_month
        dow_ok = self.days_of_week is None or quartz_dow in self.days_of_week
        return dom_ok and dow_ok

    def next_after(self, after: dt.datetime) -> dt.datetime | None:
        """First fire time strictly after ``after`` (naive UTC datetimes), None if never."""
        t = after.replace(microsecond=0) + dt.timedelta(seconds=1)
        limit_year = t.year + 200
        for _ in range(100000):
            if t.year > limit_year:
                return None
            if self.years is not None and t.year not in self.years:
                future = [y for y in self.years if y > t.year]
                if not future:
                    return None
                t = dt.datetime(min(future), 1, 1)
                continue
            if t.month not in self.months:
                t = (t.replace(day=1, hour=0, minute=0, second=0) + dt.timedelta(days=32)).replace(day=1)
                continue
            if not self._day_ok(t):
                t = t.replace(hour=0, minute=0, second=0) + dt.timedelta(days=1)
                continue
            if t.hour not in self.hours:
                t = t.replace(minute=0, second=0) + dt.timedelta(hours=1)
                continue
            if t.minute not in self.minutes:
                t = t.replace(second=0) + dt.timedelta(minutes=1)
                continue
            if t.second not in self.seconds:
                t = t + dt.timedelta(seconds=1)
                continue
            return t
        return None

    def seconds_until_next(self, now: dt.datetime | None = None) -> float | None:
        now = now or dt.datetime.now(dt.timezone.utc).replace(tzinfo=None)
        nxt = self.next_after(now)
        if nxt is None:
            return None
        return max(0.0, (nxt - now).total_seconds())


def parse_cron(expression: str) -> CronSchedule:
    """Parse a Quartz expression; raise :class:`CronError` when unsupported or invalid."""
    parts = expression.split()
    if len(parts) not in (6, 7):
        raise CronError(f"invalid cron expression [{expression}]: expected 6 or 7 fields")
    sec = _field(parts[0], 0, 59)
    minute = _field(parts[1], 0, 59)
    hour = _field(parts[2], 0, 23)
    dom = _field(parts[3], 1, 31, allow_question=True)
    month = _field(parts[4], 1, 12, _MONTHS)
    dow = _field(parts[5], 1, 7, _DAYS, allow_question=True)
    years = _field(parts[6], 1970, 2199) if len(parts) == 7 else None
    assert sec is not None and minute is not None and hour is not None and month is not None
    return CronSchedule(expression, sec, minute, hour, dom, month, dow, years)


__all__ = ["CronError", "CronSchedule", "parse_cron"]
