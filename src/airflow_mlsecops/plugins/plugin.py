"""``MLSecOpsPlugin``: registered through the ``airflow.plugins`` entry point.

It is imported in every Airflow process (scheduler, API server, each task), so it stays light: no
FastAPI, engine, MLflow or database import happens here. The plugin's web app (the MLSecOps page and
its JSON API, :mod:`airflow_mlsecops.plugins.app`) is mounted by the API server under
:data:`URL_PREFIX` as a small ASGI stand-in that builds the real FastAPI app on its first request.

The UI shows it twice (``external_views``): "MLSecOps" in the main navigation (recent DAG runs with
evidence, registered models) and an "Evidence" tab on every DAG run page (that run's evidence chain,
re-verified when opened). Gate operators carry their own MLflow evidence link (Airflow 3 stores link
URLs in XCom, so links need no plugin registration).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

from airflow.sdk.plugins_manager import AirflowPlugin

#: Where the API server mounts the plugin's app (pages and ``/api/v1``).
URL_PREFIX = "/mlsecops"

_Scope = MutableMapping[str, Any]
_Receive = Callable[[], Awaitable[MutableMapping[str, Any]]]
_Send = Callable[[MutableMapping[str, Any]], Awaitable[None]]


class LazyApp:
    """An ASGI app that imports and builds :func:`airflow_mlsecops.plugins.app.create_app` on its
    first request: only the API server ever serves it, and only it pays for the import."""

    def __init__(self) -> None:
        self._app: Callable[[_Scope, _Receive, _Send], Awaitable[None]] | None = None

    @property
    def app(self) -> Callable[[_Scope, _Receive, _Send], Awaitable[None]]:
        if self._app is None:
            from airflow_mlsecops.plugins.app import create_app

            self._app = create_app()
        return self._app

    async def __call__(self, scope: _Scope, receive: _Receive, send: _Send) -> None:
        await self.app(scope, receive, send)


class MLSecOpsPlugin(AirflowPlugin):
    """Security gates with signed evidence for ML pipelines: the MLSecOps page and API."""

    name = "mlsecops"
    # Lists, as Airflow's plugins manager expects (it removes an entry whose url_route clashes with
    # another plugin's in place); nothing of this package mutates them.
    fastapi_apps = [  # noqa: RUF012
        {"app": LazyApp(), "url_prefix": URL_PREFIX, "name": "MLSecOps evidence and model review"},
    ]
    external_views = [  # noqa: RUF012
        # The main navigation: recent DAG runs with evidence and the registered models.
        {"name": "MLSecOps", "href": f"{URL_PREFIX}/", "destination": "nav", "url_route": "mlsecops"},
        # A tab on every DAG run page; the UI fills in {DAG_ID} and {RUN_ID} (URL-encoded).
        {
            "name": "Evidence",
            "href": f"{URL_PREFIX}/dags/{{DAG_ID}}/dagRuns/{{RUN_ID}}",
            "destination": "dag_run",
            "url_route": "mlsecops-evidence",
        },
    ]
