"""What a reviewer or an auditor reads: one DAG run's evidence, or one registered model's history.

Pure (no Airflow import). Three front ends render the same view:

* the approval request's Markdown body (``ModelApprovalGateOperator``, Airflow's Required actions page);
* the plugin's MLSecOps page and JSON API (:mod:`airflow_mlsecops.plugins`);
* ``mlsecops report``: one self-contained HTML file for people without Airflow.

The evidence is re-verified every time a view is built: a view never shows a gate as passed that
does not verify.
"""

from __future__ import annotations

from airflow_mlsecops.review.view import (
    ModelReview,
    RunReview,
    model_review,
    pipeline_run_review,
    run_review,
)

__all__ = ["ModelReview", "RunReview", "model_review", "pipeline_run_review", "run_review"]
