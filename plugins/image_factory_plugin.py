"""The golden-image factory's Airflow plugin: what the scheduler and API server must know by name."""

from __future__ import annotations

from airflow.plugins_manager import AirflowPlugin

from image_factory.conf_guard import ConfGuard
from image_factory.lineage import listener as lineage_listener
from image_factory.lineage import webapp as lineage_webapp
from image_factory.timetables import PatchTuesdayTimetable


class ImageFactoryPlugin(AirflowPlugin):
    name = "image_factory"
    timetables = [PatchTuesdayTimetable]
    # bad conf for a golden-image DAG gets 400 (field and rule) at trigger time, before a run exists
    fastapi_root_middlewares = [{"name": "image_factory_conf_guard", "middleware": ConfGuard}]
    # how each golden-image run was started (UI or REST API), for its lineage record
    listeners = [lineage_listener]
    # the "Golden images" page: galleries, versions, replication, smoke results and ancestry (login required)
    fastapi_apps = [{"name": "golden_images", "app": lineage_webapp.app, "url_prefix": lineage_webapp.URL_PREFIX}]
    external_views = [{"name": "Golden images", "href": f"{lineage_webapp.URL_PREFIX}/", "url_route": "golden-images",
                       "destination": "nav", "nav_top_level": True}]
