"""HTML rendering of a review: a self-contained page (inline CSS, no script, no network).

INTERFACE STUB (session 15): filled in by the review work.
"""

from __future__ import annotations

from airflow_mlsecops.review.view import ModelReview, RunReview


def render_html(review: RunReview | ModelReview, *, title: str | None = None) -> str:
    """One self-contained HTML document (opens offline) showing ``review``."""
    raise NotImplementedError("review.html.render_html: being built")
