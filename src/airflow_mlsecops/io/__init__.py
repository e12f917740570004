"""Inputs and stores: fetching local, ``s3://`` and MLflow artifacts, tabular loading, the MLflow evidence store."""
