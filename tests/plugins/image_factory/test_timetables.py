"""The patch timetable schedules one run a month, never catches up by default, and survives serialization."""

from __future__ import annotations

from datetime import UTC, datetime

import pendulum
import pytest
from airflow.timetables.base import DataInterval, TimeRestriction

from image_factory.timetables import PatchTuesdayTimetable


def test_next_run_after_the_last_one_is_next_month() -> None:
    tt = PatchTuesdayTimetable(1, "02:00")
    last = DataInterval.exact(pendulum.datetime(2026, 11, 11, 2, 0, tz="UTC"))
    info = tt.next_dagrun_info(last_automated_data_interval=last,
                               restriction=TimeRestriction(earliest=None, latest=None, catchup=False))
    assert info is not None and info.run_after == pendulum.datetime(2026, 12, 9, 2, 0, tz="UTC")


def test_first_run_does_not_catch_up_missed_months(monkeypatch: pytest.MonkeyPatch) -> None:
    import image_factory.timetables as module

    monkeypatch.setattr(module, "_now", lambda: datetime(2026, 11, 25, tzinfo=UTC))
    tt = PatchTuesdayTimetable(1, "02:00")
    since_january = TimeRestriction(earliest=pendulum.datetime(2026, 1, 1, tz="UTC"), latest=None, catchup=False)
    info = tt.next_dagrun_info(last_automated_data_interval=None, restriction=since_january)
    assert info is not None and info.run_after == pendulum.datetime(2026, 12, 9, 2, 0, tz="UTC")
    catching_up = TimeRestriction(earliest=pendulum.datetime(2026, 1, 1, tz="UTC"), latest=None, catchup=True)
    info = tt.next_dagrun_info(last_automated_data_interval=None, restriction=catching_up)
    assert info is not None and info.run_after == pendulum.datetime(2026, 1, 14, 2, 0, tz="UTC")


def test_serialization_round_trip_and_description() -> None:
    tt = PatchTuesdayTimetable(2, "03:00")
    again = PatchTuesdayTimetable.deserialize(tt.serialize())
    assert again == tt and again.summary == "Patch Tuesday +2d 03:00 UTC"
    assert tt.description == "Monthly, 2 days after Patch Tuesday (the second Tuesday), at 03:00 UTC"


def test_scheduled_image_dags_serialize_with_the_registered_timetable() -> None:
    from airflow.serialization.serialized_objects import DagSerialization

    from image_factory.dag_factory import image_dags

    dags = image_dags()
    web = dags["golden_debian12-web"]
    assert isinstance(web.timetable, PatchTuesdayTimetable)
    assert not dags["golden_debian12-specialized"].timetable.can_be_scheduled  # no schedule: manual and API only
    restored = DagSerialization.from_dict(DagSerialization.to_dict(web))
    assert restored.timetable.description == web.timetable.description
