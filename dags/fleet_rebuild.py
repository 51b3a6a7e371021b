"""Airflow DAG: rebuild every golden image at once, within the regional vCPU quota and builds per region
(include/fleet.yaml). The logic lives in plugins/image_factory (fleet_dag.py, fleet.py)."""

from __future__ import annotations

from image_factory.fleet_dag import fleet_dag

dag = fleet_dag()
