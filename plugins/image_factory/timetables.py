"""The monthly patch rebuild as an Airflow timetable: Patch Tuesday + an offset, at a time of day (UTC).

Registered through the factory's Airflow plugin (plugins/image_factory_plugin.py) so the scheduler
can rebuild it from the serialized DAG. Missed months are not caught up unless the DAG asks for
catchup: after downtime the next rebuild is the next occurrence, not a burst of old ones.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from airflow.timetables.base import DagRunInfo, DataInterval, Timetable

from image_factory.patch_schedule import PatchSchedule


def _now() -> datetime:
    import pendulum

    return pendulum.now("UTC")


class PatchTuesdayTimetable(Timetable):
    """One run per month, ``offset_days`` after the second Tuesday, at ``at`` UTC."""

    def __init__(self, offset_days: int = 0, at: str = "02:00") -> None:
        self.schedule = PatchSchedule.parse(offset_days, at)
        self.offset_days, self.at = offset_days, at
        self.description = self.schedule.describe()

    @property
    def summary(self) -> str:
        return f"Patch Tuesday +{self.offset_days}d {self.at} UTC"

    def serialize(self) -> dict[str, Any]:
        return {"offset_days": self.offset_days, "at": self.at}

    @classmethod
    def deserialize(cls, data: dict[str, Any]) -> Timetable:
        return cls(int(data["offset_days"]), str(data["at"]))

    def __eq__(self, other: object) -> bool:
        return isinstance(other, PatchTuesdayTimetable) and self.serialize() == other.serialize()

    def __hash__(self) -> int:
        return hash((self.offset_days, self.at))

    def infer_manual_data_interval(self, *, run_after: Any) -> DataInterval:
        return DataInterval.exact(run_after)

    def next_dagrun_info(self, *, last_automated_data_interval: DataInterval | None,
                         restriction: Any) -> DagRunInfo | None:
        if last_automated_data_interval is not None:
            start = self.schedule.next_after(last_automated_data_interval.end)
        else:
            earliest = restriction.earliest
            if earliest is None:
                return None
            start = self.schedule.next_after(earliest, inclusive=True)
            if not restriction.catchup:
                start = max(start, self.schedule.next_after(_now()))
        if restriction.latest is not None and start > restriction.latest:
            return None
        import pendulum

        return DagRunInfo.exact(pendulum.instance(start))
