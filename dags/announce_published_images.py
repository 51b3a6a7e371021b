"""Airflow DAG: runs when any golden image publishes a version (scheduled on the images' Assets).
The logic lives in plugins/image_factory/published_dag.py."""

from __future__ import annotations

from image_factory.pipeline.build import include_dir
from image_factory.published_dag import images_in, published_dag

dag = published_dag(images_in(include_dir() / "images"))
