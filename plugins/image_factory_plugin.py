"""The golden-image factory's Airflow plugin: what the scheduler and API server must know by name."""

from __future__ import annotations

from airflow.plugins_manager import AirflowPlugin

from image_factory.timetables import PatchTuesdayTimetable


class ImageFactoryPlugin(AirflowPlugin):
    name = "image_factory"
    timetables = [PatchTuesdayTimetable]
