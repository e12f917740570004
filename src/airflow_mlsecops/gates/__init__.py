"""Gate engines: pure functions from inputs to a :class:`~airflow_mlsecops.gates.base.GateOutcome`.

No Airflow import here; operators and the CLI call these.
"""
