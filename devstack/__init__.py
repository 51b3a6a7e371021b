"""The local deployment: the local Azure and Airflow as processes on this machine, started and stopped by PID."""
