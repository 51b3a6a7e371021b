"""Hooks: the only code that reads Airflow Connections and builds Azure SDK clients."""
