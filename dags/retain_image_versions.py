"""Airflow DAG: every day, delete the gallery image versions retention no longer needs (keep N, end of
life) and report what stays and why. The logic lives in plugins/image_factory (retention_dag.py, retention.py)."""

from __future__ import annotations

from image_factory.retention_dag import retention_dag

dag = retention_dag()
