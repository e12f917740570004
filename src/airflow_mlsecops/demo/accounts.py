"""The people of the example deployment: who reviews ``credit-risk`` and who trains it.

One list, read by the example DAG (its ``reviewers``), ``mlsecops demo`` (``--approve-as`` must
name one of them) and ``mlsecops airflow`` (it creates their Airflow logins). Light: imported at
DAG parse.
"""

from __future__ import annotations

#: May approve promoting ``credit-risk`` (the example DAG's ``ModelApprovalGateOperator``).
REVIEWERS: tuple[str, ...] = ("alice", "bob")
#: An ML engineer: triggers the training, so the model's author, and may not approve it.
ML_ENGINEER = "carol"
#: Airflow's administrator login of ``mlsecops airflow``.
ADMIN = "admin"
