"""What a person triggering the example DAGs meets: valid default params, a person as the model's
author, and variants of the training pipeline built by another DAG file."""

from __future__ import annotations

import sys
from datetime import timedelta
from pathlib import Path
from types import ModuleType, SimpleNamespace

import pytest

from tests.conftest import REPO_ROOT

DAGS = REPO_ROOT / "dags"


def _dags() -> dict:
    from airflow.dag_processing.dagbag import DagBag

    bag = DagBag(dag_folder=str(DAGS))
    assert bag.import_errors == {}
    return bag.dags


def _pipeline_module() -> ModuleType:
    import importlib.util

    spec = importlib.util.spec_from_file_location("pipeline_under_test", DAGS / "secure_training_pipeline.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _schema_types(schema: dict) -> set[str]:
    declared = schema.get("type")
    return {declared} if isinstance(declared, str) else set(declared or ())


def test_every_param_default_is_valid_so_the_trigger_form_works() -> None:
    """The UI's Trigger form disables its button while any param is invalid, and treats a string
    param with an empty default as required: every default must validate as it is."""
    from airflow.sdk.definitions.param import ParamValidationError

    dags = _dags()
    assert {"secure_training_pipeline", "model_monitoring"} <= set(dags)
    checked = 0
    for dag_id, dag in dags.items():
        for key in dag.params:
            param = dag.params.get_param(key)
            try:
                param.resolve(param.value)
            except ParamValidationError as exc:
                pytest.fail(f"{dag_id}: param {key!r} default {param.value!r} is invalid: {exc}")
            types = _schema_types(param.schema)
            if "string" in types and "null" not in types:
                assert param.value not in ("", None), (
                    f"{dag_id}: param {key!r} is a required-looking empty string; use Param(None, type=['null', 'string'])"
                )
            checked += 1
    assert checked >= 10


def test_unset_osv_db_renders_as_empty_not_none() -> None:
    dag = _pipeline_module().dag
    sbom = dag.get_task("build_sbom")
    assert dag.params["osv_db"] is None
    assert sbom.render_template(sbom.osv_db, {"params": {"osv_db": None}}) == ""
    assert sbom.render_template(sbom.osv_db, {"params": {"osv_db": "/data/osv.zip"}}) == "/data/osv.zip"


def test_the_author_is_the_triggering_user_or_the_param_for_untriggered_runs() -> None:
    from airflow.sdk.exceptions import AirflowFailException

    author = _pipeline_module().model_author
    triggered = SimpleNamespace(triggering_user_name="carol")
    scheduled = SimpleNamespace(triggering_user_name=None)
    assert author({"dag_run": triggered, "params": {"author": None}}) == "carol"
    # Whoever triggers a run cannot name someone else as the author (and then approve the model).
    assert author({"dag_run": triggered, "params": {"author": "dave"}}) == "carol"
    assert author({"dag_run": scheduled, "params": {"author": " dave "}}) == "dave"
    for params in ({"author": None}, {"author": "  "}, {}):
        with pytest.raises(AirflowFailException, match="needs an author"):
            author({"dag_run": scheduled, "params": params})


def test_reviewers_and_approval_timeout_of_the_example() -> None:
    from airflow_mlsecops.demo.accounts import REVIEWERS

    module = _pipeline_module()
    approve = module.dag.get_task("approve_model")
    assert module.dag.dag_id == "secure_training_pipeline"
    assert tuple(approve.reviewers) == REVIEWERS
    assert approve.execution_timeout is None or approve.execution_timeout >= timedelta(hours=24)
    assert approve.response_timeout == timedelta(hours=24)


def test_another_dag_file_builds_a_variant(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A DAG file that imports the builder gets its own variant only: the example's own DAG is not
    collected from it (it would then seem to live in two files), and the variant lives in that file."""
    from airflow.dag_processing.dagbag import DagBag

    variant = tmp_path / "variant_pipeline.py"
    # Airflow's safe mode parses only files that mention both "airflow" and "dag".
    variant.write_text(
        '"""An Airflow DAG: the secure training pipeline with a 30 s approval timeout."""\n'
        "from datetime import timedelta\n"
        "from secure_training_pipeline import build_secure_training_pipeline\n\n"
        'dag = build_secure_training_pipeline("secure_training_pipeline_short_timeout", approval_timeout=timedelta(seconds=30))\n'
    )
    monkeypatch.syspath_prepend(str(DAGS))  # Airflow puts a bundle's folder on sys.path
    monkeypatch.delitem(sys.modules, "secure_training_pipeline", raising=False)
    bag = DagBag(dag_folder=str(tmp_path))
    assert bag.import_errors == {}
    assert set(bag.dag_ids) == {"secure_training_pipeline_short_timeout"}
    dag = bag.dags["secure_training_pipeline_short_timeout"]
    assert Path(dag.fileloc) == variant
    assert dag.get_task("approve_model").response_timeout == timedelta(seconds=30)
    assert len(dag.tasks) == len(_pipeline_module().dag.tasks)
