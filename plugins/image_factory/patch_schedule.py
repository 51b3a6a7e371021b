"""Patch Tuesday arithmetic (pure): the second Tuesday of a month, plus an offset and a time of day.

Microsoft releases security updates on the second Tuesday of each month; golden images are
rebuilt a few days later (the offset) so Marketplace images and mirrors have caught up.
"""

from __future__ import annotations

import calendar
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta

TUESDAY = calendar.TUESDAY


def patch_tuesday(year: int, month: int) -> date:
    """The second Tuesday of ``year``-``month``."""
    first = date(year, month, 1)
    to_tuesday = (TUESDAY - first.weekday()) % 7
    return first + timedelta(days=to_tuesday + 7)


def _next_month(year: int, month: int) -> tuple[int, int]:
    return (year + 1, 1) if month == 12 else (year, month + 1)


@dataclass(frozen=True)
class PatchSchedule:
    """Runs at ``at`` (UTC) on Patch Tuesday + ``offset_days`` every month."""

    offset_days: int = 0
    at: time = time(2, 0)

    def __post_init__(self) -> None:
        if not 0 <= self.offset_days <= 27:
            raise ValueError(f"offset_days: must be between 0 and 27 (got {self.offset_days})")

    @classmethod
    def parse(cls, offset_days: int = 0, at: str = "02:00") -> PatchSchedule:
        hours, _, minutes = at.partition(":")
        return cls(offset_days=int(offset_days), at=time(int(hours), int(minutes)))

    def occurrence(self, year: int, month: int) -> datetime:
        day = patch_tuesday(year, month) + timedelta(days=self.offset_days)
        return datetime.combine(day, self.at, tzinfo=UTC)

    def next_after(self, moment: datetime, *, inclusive: bool = False) -> datetime:
        """The first occurrence after ``moment`` (or at it, when ``inclusive``)."""
        moment = moment.astimezone(UTC)
        year, month = moment.year, moment.month
        # an offset can push this month's occurrence into the next month: start one month back
        year, month = (year - 1, 12) if month == 1 else (year, month - 1)
        for _ in range(4):
            candidate = self.occurrence(year, month)
            if candidate > moment or (inclusive and candidate == moment):
                return candidate
            year, month = _next_month(year, month)
        raise AssertionError("unreachable: an occurrence exists in every month")

    def previous_before(self, moment: datetime) -> datetime:
        """The last occurrence at or before ``moment``."""
        moment = moment.astimezone(UTC)
        year, month = _next_month(moment.year, moment.month)
        for _ in range(4):
            candidate = self.occurrence(year, month)
            if candidate <= moment:
                return candidate
            year, month = (year - 1, 12) if month == 1 else (year, month - 1)
        raise AssertionError("unreachable: an occurrence exists in every month")

    def describe(self) -> str:
        when = "Patch Tuesday" if self.offset_days == 0 else (
            f"{self.offset_days} day{'s' if self.offset_days != 1 else ''} after Patch Tuesday")
        return f"Monthly, {when} (the second Tuesday), at {self.at.strftime('%H:%M')} UTC"
