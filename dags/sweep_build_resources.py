"""Airflow DAG: every hour, delete the temporary resource groups that dead or failed image runs left
behind. The logic lives in plugins/image_factory (sweeper_dag.py, sweeper.py)."""

from __future__ import annotations

from image_factory.sweeper_dag import sweeper_dag

dag = sweeper_dag()
