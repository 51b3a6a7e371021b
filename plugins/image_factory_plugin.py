"""The golden-image factory's Airflow plugin: what the scheduler and API server must know by name."""

from __future__ import annotations

from airflow.plugins_manager import AirflowPlugin

from image_factory.conf_guard import ConfGuard
from image_factory.lineage import listener as lineage_listener
from image_factory.timetables import PatchTuesdayTimetable


class ImageFactoryPlugin(AirflowPlugin):
    name = "image_factory"
    timetables = [PatchTuesdayTimetable]
    # bad conf for a golden-image DAG gets 400 (field and rule) at trigger time, before a run exists
    fastapi_root_middlewares = [{"name": "image_factory_conf_guard", "middleware": ConfGuard}]
    # how each golden-image run was started (UI or REST API), for its lineage record
    listeners = [lineage_listener]
