"""Inputs and stores: fetching local, ``s3://`` and MLflow artifacts, tables, the MLflow evidence store, the safe model loader."""
