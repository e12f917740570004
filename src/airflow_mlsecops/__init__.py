"""airflow-mlsecops: security gates for ML pipelines on Apache Airflow 3, with signed, verifiable evidence in MLflow.

One folder per concern: ``evidence`` (format and crypto), ``gates`` (pure engines), ``io`` (fetching
and stores), ``lifecycle`` (recording, verification, approval, registry), ``policy`` (policy as
code), ``operators`` / ``hooks`` / ``plugins`` (Airflow), ``cli`` and ``demo``. Importing this
package imports nothing else.
"""
