"""Hooks: own the clients (MLflow, ledger database, keys) that operators use."""
