"""Run the suite in a real Airflow: every component its own process (``mlsecops airflow``, the deployment tests)."""
