-- The factory's lineage store: its own database beside Airflow's, written by every worker.
CREATE DATABASE image_factory_lineage OWNER airflow;
