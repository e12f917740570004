"""The plugin's web app: the MLSecOps page and its JSON API, served by Airflow's API server.

Mounted under ``/mlsecops`` (:data:`airflow_mlsecops.plugins.plugin.URL_PREFIX`)::

    GET /mlsecops/                                                  page: recent DAG runs with evidence, models
    GET /mlsecops/dags/{dag_id}/dagRuns/{run_id}                    page: one DAG run's evidence
    GET /mlsecops/models/{name}                                     page: one registered model
    GET /mlsecops/api/v1/dags/{dag_id}/dagRuns/{run_id}/evidence    {"verified", "gates", "failures", ...}
    GET /mlsecops/api/v1/models/{name}                              {"name", "versions", "aliases", ...}
    GET /mlsecops/api/v1/dagRuns                                    recent DAG runs with evidence

Every route depends on Airflow's own user dependency (a plugin app is open otherwise): the caller
is authenticated by a bearer token (``POST /auth/token``) or, in a browser, by the ``_token`` cookie
the UI sets at login; no credential is 401. A DAG run's routes then need read access to that DAG's
runs (``requires_access_dag("GET", DagAccessEntity.RUN)``), else 403. A model's routes need read
access to the runs of every DAG that recorded or promoted it (the ``dag_id`` values of its review),
and read access to DAGs at large when the review names none. The index lists only runs of DAGs the
caller may read.

Evidence is re-verified on every request (the review builder verifies the signatures, the digests
and the ledger each time); responses are never cached. An error is never a pass: a review that cannot
be built answers 404 (nothing recorded) or 502/503 with ``"verified": false``.

``GetUserDep`` is imported at module level on purpose: with ``from __future__ import annotations``
FastAPI resolves the annotations by name, and a name imported inside a function would turn the
dependency into a query parameter (and every route into an open one).
"""

from __future__ import annotations

import html
import logging
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

from airflow.api_fastapi.app import get_auth_manager
from airflow.api_fastapi.auth.managers.models.resource_details import DagAccessEntity, DagDetails
from airflow.api_fastapi.core_api.security import GetUserDep, requires_access_dag
from fastapi import Depends, FastAPI, HTTPException, Query, status
from fastapi.responses import HTMLResponse, JSONResponse

from airflow_mlsecops.exceptions import ConfigurationError, MLSecOpsError, StoreUnavailable

if TYPE_CHECKING:
    from airflow_mlsecops.config import Settings

log = logging.getLogger(__name__)

#: Headers of every answer: always re-verified (never cached); the pages run no script and load nothing.
NO_STORE = {"Cache-Control": "no-store", "X-Content-Type-Options": "nosniff"}
PAGE_HEADERS = {
    **NO_STORE,
    "Content-Security-Policy": (
        "default-src 'none'; style-src 'unsafe-inline'; img-src data:; frame-ancestors 'self'; base-uri 'none'"
    ),
}
#: How many recent MLflow runs with evidence the index looks at.
INDEX_LIMIT = 50

_read_dag_runs = Depends(requires_access_dag(method="GET", access_entity=DagAccessEntity.RUN))


# ---------------------------------------------------------------------------------------- reviews
def _settings() -> Settings:
    """The evidence store the tasks record into: the ``mlflow_default`` Connection if defined, then
    ``[mlsecops]`` and the environment (what :class:`~airflow_mlsecops.hooks.evidence.EvidenceHook` uses)."""
    from airflow_mlsecops.hooks.evidence import EvidenceHook

    return EvidenceHook().settings


def _build_run_review(dag_id: str, run_id: str, experiment: str | None) -> Any:
    """The DAG run's review, re-verified now (store credentials redacted); failures become HTTP errors."""
    from airflow_mlsecops.review import pipeline_run_review

    with _review_errors(f"DAG run {run_id!r} of {dag_id!r}"):
        review = pipeline_run_review(dag_id, run_id, experiment_name=experiment, settings=_settings())
    return review  # store credentials are redacted by the review itself (review.view.redact_uri)


def _run_review(dag_id: str, run_id: str, experiment: str | None) -> dict[str, Any]:
    review = _build_run_review(dag_id, run_id, experiment)
    with _review_errors(f"DAG run {run_id!r} of {dag_id!r}"):
        return dict(review.to_dict())


def _model_review(name: str) -> dict[str, Any]:
    from airflow_mlsecops.review import model_review

    with _review_errors(f"model {name!r}"):
        return model_review(name, settings=_settings()).to_dict()


class _ReviewFailed(HTTPException):
    pass


@contextmanager
def _review_errors(what: str) -> Iterator[None]:
    """Maps the review builder's errors to HTTP answers; nothing that failed reads as verified."""
    try:
        yield
    except HTTPException:
        raise
    except StoreUnavailable as exc:
        # Its message names the store's URI, which may hold a database password: log it only.
        log.warning("the review of %s failed: %s", what, exc)
        raise _ReviewFailed(
            status.HTTP_503_SERVICE_UNAVAILABLE, "the evidence store is unavailable (the API server's log says why)"
        ) from exc
    except ConfigurationError as exc:
        raise _ReviewFailed(status.HTTP_404_NOT_FOUND, f"no evidence for {what}: {exc}") from exc
    except MLSecOpsError as exc:
        raise _ReviewFailed(status.HTTP_502_BAD_GATEWAY, f"the review of {what} failed: {exc}") from exc
    except Exception as exc:
        log.exception("the review of %s failed", what)
        raise _ReviewFailed(status.HTTP_500_INTERNAL_SERVER_ERROR, f"the review of {what} failed: {type(exc).__name__}") from exc


def _dag_ids_in(value: Any) -> Iterator[str]:
    """Every ``dag_id`` value anywhere in a review's JSON (the DAGs that recorded or promoted a model)."""
    if isinstance(value, dict):
        for key, item in value.items():
            if key == "dag_id" and isinstance(item, str) and item:
                yield item
            else:
                yield from _dag_ids_in(item)
    elif isinstance(value, list | tuple):
        for item in value:
            yield from _dag_ids_in(item)


def _authorize_dags(user: Any, dag_ids: Sequence[str]) -> None:
    """403 unless ``user`` may read the runs of every DAG in ``dag_ids`` (of DAGs at large when empty)."""
    from airflow.models.dag import DagModel

    manager = get_auth_manager()
    if not dag_ids:
        allowed = manager.is_authorized_dag(method="GET", access_entity=DagAccessEntity.RUN, details=None, user=user)
    else:
        teams = DagModel.get_dag_id_to_team_name_mapping(list(dag_ids))
        allowed = manager.batch_is_authorized_dag(
            [
                {"method": "GET", "access_entity": DagAccessEntity.RUN, "details": DagDetails(id=d, team_name=teams.get(d))}
                for d in dict.fromkeys(dag_ids)
            ],
            user=user,
        )
    if not allowed:
        raise HTTPException(status.HTTP_403_FORBIDDEN, "Forbidden")


def _may_read_some_dag(user: Any) -> None:
    """403 up front for a caller who may read no DAG at all (before anything about a model is looked up)."""
    manager = get_auth_manager()
    if manager.is_authorized_dag(method="GET", access_entity=DagAccessEntity.RUN, details=None, user=user):
        return
    if not manager.get_authorized_dag_ids(user=user, method="GET"):
        raise HTTPException(status.HTTP_403_FORBIDDEN, "Forbidden")


def _authorized_model_review(name: str, user: Any) -> dict[str, Any]:
    _may_read_some_dag(user)
    review = _model_review(name)
    _authorize_dags(user, list(_dag_ids_in(review)))
    return review


def _recent_runs(user: Any) -> list[dict[str, str]]:
    """Recent MLflow runs that hold a DAG run's evidence, of DAGs ``user`` may read, newest first."""
    from airflow_mlsecops.io.mlflow_store import TAG_DAG_ID, TAG_RUN_ID, MLflowEvidenceStore

    allowed = get_auth_manager().get_authorized_dag_ids(user=user, method="GET")
    store = MLflowEvidenceStore.from_settings(_settings())
    with _review_errors("the recent DAG runs"), store.errors("cannot list the runs with evidence"):
        experiments = [e.experiment_id for e in store.client.search_experiments(max_results=1000)]
        runs = (
            store.client.search_runs(
                experiments,
                filter_string=f"tags.`{TAG_DAG_ID}` LIKE '%'",
                max_results=INDEX_LIMIT,
                order_by=["attributes.start_time DESC"],
            )
            if experiments
            else []
        )
    found: list[dict[str, str]] = []
    for run in runs:
        dag_id, run_id = run.data.tags.get(TAG_DAG_ID), run.data.tags.get(TAG_RUN_ID)
        if dag_id and run_id and dag_id in allowed:
            found.append({"dag_id": dag_id, "run_id": run_id, "mlflow_run_id": run.info.run_id})
    return found


def _registered_models(user: Any) -> list[str]:
    """Registered model names, for callers who may read DAGs at large (a model spans DAGs)."""
    from airflow_mlsecops.io.mlflow_store import MLflowEvidenceStore

    try:
        _authorize_dags(user, [])
    except HTTPException:
        return []
    store = MLflowEvidenceStore.from_settings(_settings())
    with _review_errors("the registered models"), store.errors("cannot list the registered models"):
        return sorted(m.name for m in store.client.search_registered_models(max_results=200))


# ---------------------------------------------------------------------------------------- pages
def _page(title: str, body: str, status_code: int = 200) -> HTMLResponse:
    document = (
        "<!doctype html><html lang='en'><head><meta charset='utf-8'>"
        f"<title>{html.escape(title)}</title><style>"
        "body{font-family:system-ui,sans-serif;margin:1.5rem;color:#1a202c}"
        "table{border-collapse:collapse}td,th{padding:.3rem .8rem;border-bottom:1px solid #e2e8f0;text-align:left}"
        "code{font-size:.9em}.muted{color:#718096}"
        f"</style></head><body><h1>{html.escape(title)}</h1>{body}</body></html>"
    )
    return HTMLResponse(document, status_code=status_code, headers=PAGE_HEADERS)


def _error_page(error: HTTPException) -> HTMLResponse:
    titles = {404: "No MLSecOps evidence", 403: "Forbidden"}
    title = titles.get(error.status_code, "The evidence could not be checked")
    return _page(title, f"<p>{html.escape(str(error.detail))}</p>", error.status_code)


def _review_page(review: Any, title: str) -> HTMLResponse:
    from airflow_mlsecops.review.html import render_html

    return HTMLResponse(render_html(review, title=title), headers=PAGE_HEADERS)


def _run_link(dag_id: str, run_id: str) -> str:
    return f"dags/{quote(dag_id, safe='')}/dagRuns/{quote(run_id, safe='')}"


def _index_body(runs: list[dict[str, str]], models: list[str]) -> str:
    rows = "".join(
        f"<tr><td><code>{html.escape(r['dag_id'])}</code></td>"
        f"<td><a href='{html.escape(_run_link(r['dag_id'], r['run_id']))}'>{html.escape(r['run_id'])}</a></td>"
        f"<td class='muted'><code>{html.escape(r['mlflow_run_id'])}</code></td></tr>"
        for r in runs
    )
    runs_html = (
        f"<table><tr><th>DAG</th><th>DAG run</th><th>MLflow run</th></tr>{rows}</table>"
        if runs
        else "<p class='muted'>No DAG run you may read has recorded evidence yet.</p>"
    )
    items = "".join(f"<li><a href='models/{quote(m, safe='')}'>{html.escape(m)}</a></li>" for m in models)
    models_html = f"<ul>{items}</ul>" if models else "<p class='muted'>No registered model to show.</p>"
    return (
        "<p>Each page re-verifies the evidence when it opens: signatures, digests and the ledger.</p>"
        f"<h2>Recent DAG runs with evidence</h2>{runs_html}<h2>Registered models</h2>{models_html}"
    )


# ---------------------------------------------------------------------------------------- the app
def create_app() -> FastAPI:
    """The plugin's FastAPI app (mounted by Airflow's API server under ``/mlsecops``)."""
    app = FastAPI(
        title="MLSecOps",
        description="Evidence of the MLSecOps gates, re-verified on every request; behind Airflow's login.",
        version="1",
        # No open route at all: FastAPI's /docs, /redoc and /openapi.json would be served without a login.
        docs_url=None,
        redoc_url=None,
        openapi_url=None,
    )

    @app.get("/api/v1/dags/{dag_id}/dagRuns/{run_id}/evidence", dependencies=[_read_dag_runs], tags=["evidence"])
    def dag_run_evidence(
        dag_id: str, run_id: str, experiment: str | None = Query(None, description="MLflow experiment (default: the DAG id)")
    ) -> JSONResponse:
        """One DAG run's evidence, re-verified now: ``verified``, ``gates`` (pipeline order), ``failures``."""
        try:
            return JSONResponse(_run_review(dag_id, run_id, experiment), headers=NO_STORE)
        except _ReviewFailed as error:
            return JSONResponse({"verified": False, "detail": error.detail}, status_code=error.status_code, headers=NO_STORE)

    @app.get("/api/v1/models/{name}", tags=["models"])
    def model(name: str, user: GetUserDep) -> JSONResponse:
        """A registered model's versions, aliases, promotions and rollbacks."""
        return JSONResponse(_authorized_model_review(name, user), headers=NO_STORE)

    @app.get("/api/v1/dagRuns", tags=["evidence"])
    def recent_runs(user: GetUserDep) -> JSONResponse:
        """Recent DAG runs with evidence, of the DAGs the caller may read, newest first."""
        return JSONResponse({"dag_runs": _recent_runs(user)}, headers=NO_STORE)

    @app.get("/", response_class=HTMLResponse, include_in_schema=False)
    def index(user: GetUserDep) -> HTMLResponse:
        try:
            return _page("MLSecOps", _index_body(_recent_runs(user), _registered_models(user)))
        except HTTPException as error:
            return _error_page(error)

    @app.get(
        "/dags/{dag_id}/dagRuns/{run_id}", response_class=HTMLResponse, dependencies=[_read_dag_runs], include_in_schema=False
    )
    def dag_run_page(dag_id: str, run_id: str, experiment: str | None = None) -> HTMLResponse:
        try:
            review = _build_run_review(dag_id, run_id, experiment)
            return _review_page(review, f"Evidence of {dag_id} / {run_id}")
        except HTTPException as error:
            return _error_page(error)

    @app.get("/models/{name}", response_class=HTMLResponse, include_in_schema=False)
    def model_page(name: str, user: GetUserDep) -> HTMLResponse:
        from airflow_mlsecops.review import model_review

        try:
            _may_read_some_dag(user)
            with _review_errors(f"model {name!r}"):
                review = model_review(name, settings=_settings())
            _authorize_dags(user, list(_dag_ids_in(review.to_dict())))
            return _review_page(review, f"Model {name}")
        except HTTPException as error:
            return _error_page(error)

    return app


__all__ = ["create_app"]
