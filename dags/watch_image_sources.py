"""Airflow DAG: rebuild golden images when their source image moves on (Marketplace `latest` or a
parent golden image). The logic lives in plugins/image_factory (watch_dag.py, source_watch.py)."""

from __future__ import annotations

from image_factory.watch_dag import watcher_dag

dag = watcher_dag()
