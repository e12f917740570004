"""The Airflow plugin of airflow-mlsecops, registered through the ``airflow.plugins`` entry point."""
