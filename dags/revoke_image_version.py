"""Airflow DAG: revoke a published golden image version (from the UI or the REST API) and flag every
version built from it. The logic lives in plugins/image_factory (revocation_dag.py, revocation.py)."""

from __future__ import annotations

from image_factory.revocation_dag import revocation_dag

dag = revocation_dag()
