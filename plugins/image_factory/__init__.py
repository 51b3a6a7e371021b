"""The golden-image factory's Airflow side: hooks, operators, triggers and pure planning modules."""
