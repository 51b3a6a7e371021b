"""Patch Tuesday: the second Tuesday of the month, plus an offset and a time of day."""

from __future__ import annotations

from datetime import UTC, date, datetime, time

import pytest

from image_factory.patch_schedule import PatchSchedule, patch_tuesday


@pytest.mark.parametrize(("year", "month", "expected"), [
    (2026, 11, date(2026, 11, 10)),  # the 1st is a Sunday
    (2026, 12, date(2026, 12, 8)),   # the 1st is a Tuesday: the second Tuesday is the 8th
    (2027, 1, date(2027, 1, 12)),
    (2024, 10, date(2024, 10, 8)),
])
def test_second_tuesday(year: int, month: int, expected: date) -> None:
    assert patch_tuesday(year, month) == expected
    assert expected.weekday() == 1


def test_next_occurrence_with_offset_and_time() -> None:
    s = PatchSchedule(offset_days=1, at=time(2, 0))
    assert s.next_after(datetime(2026, 11, 25, tzinfo=UTC)) == datetime(2026, 12, 9, 2, 0, tzinfo=UTC)
    assert s.next_after(datetime(2026, 11, 11, 1, 59, tzinfo=UTC)) == datetime(2026, 11, 11, 2, 0, tzinfo=UTC)
    at = datetime(2026, 11, 11, 2, 0, tzinfo=UTC)
    assert s.next_after(at) == datetime(2026, 12, 9, 2, 0, tzinfo=UTC)
    assert s.next_after(at, inclusive=True) == at
    assert s.previous_before(datetime(2026, 12, 1, tzinfo=UTC)) == at


def test_a_large_offset_can_cross_into_the_next_month() -> None:
    s = PatchSchedule(offset_days=27)
    # December 2026: Patch Tuesday the 8th + 27 days = January 4th 2027
    assert s.next_after(datetime(2026, 12, 20, tzinfo=UTC)) == datetime(2027, 1, 4, 2, 0, tzinfo=UTC)


def test_description_and_validation() -> None:
    assert PatchSchedule.parse(2, "03:30").describe() == \
        "Monthly, 2 days after Patch Tuesday (the second Tuesday), at 03:30 UTC"
    assert PatchSchedule().describe().startswith("Monthly, Patch Tuesday")
    with pytest.raises(ValueError, match="offset_days: must be between 0 and 27"):
        PatchSchedule(offset_days=40)
