"""Golden-image DAGs: one per image definition in include/images/*.yaml.

Each DAG provisions a source VM, customises it, generalizes it, publishes a gallery version
(and/or a managed image), replicates it, smoke-tests it in every region, promotes it, and tears
its temporary resources down whatever happened. The logic lives in plugins/image_factory; this
file only reads the definitions (no network, no Airflow Variables or Connections at parse time).
"""

from __future__ import annotations

from image_factory.dag_factory import image_dags

globals().update(image_dags())
