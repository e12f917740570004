"""The drift gate on real files with real Evidently: same distribution passes, a shifted batch fails,
sampling is visible, bad input is an error verdict that names the problem."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from airflow_mlsecops.config import Settings
from airflow_mlsecops.demo.example_data import FEATURES, LABEL
from airflow_mlsecops.demo.monitoring_data import drifted_batch, normal_batch, reference_frame
from airflow_mlsecops.evidence.models import Verdict
from airflow_mlsecops.gates.drift import GATE_NAME, HTML_FILE, JSON_FILE, detect_drift


@pytest.fixture(scope="module")
def stream(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    root = tmp_path_factory.mktemp("drift")
    paths = {"reference": root / "reference.csv", "normal": root / "normal.csv", "drifted": root / "drifted.parquet"}
    reference_frame().to_csv(paths["reference"], index=False)
    normal_batch().to_csv(paths["normal"], index=False)
    drifted_batch().to_parquet(paths["drifted"], index=False)
    return {name: str(path) for name, path in paths.items()}


def test_same_distribution_passes_with_html_and_trimmed_json(stream: dict[str, str]) -> None:
    outcome = detect_drift(stream["reference"], stream["normal"], columns=FEATURES)
    result = outcome.result
    assert outcome.error is None
    assert result.verdict is Verdict.PASSED, result.summary
    assert result.gate == GATE_NAME == "drift"
    assert [s.name for s in result.subjects] == [str(Path(stream["reference"])), str(Path(stream["normal"]))]
    assert result.metrics["columns"] == len(FEATURES)
    assert result.metrics["dataset_drift"] == 0.0
    assert result.metrics["rows_reference"] == 5000 and result.metrics["rows_current"] == 1000
    assert result.metrics["sampled_reference"] == result.metrics["sampled_current"] == 0.0
    (dataset,) = [f for f in result.findings if f.id == "drift.dataset"]
    assert dataset.passed and dataset.message.startswith("no dataset drift")

    page = outcome.files[HTML_FILE]
    assert page.lstrip().lower().startswith(b"<!doctype html") or page.lstrip().lower().startswith(b"<html")
    assert len(page) > 1_000_000  # self-contained: Evidently's scripts are inlined
    report = json.loads(outcome.files[JSON_FILE])
    assert len(outcome.files[JSON_FILE]) < 64 * 1024
    assert report["dataset"]["status"] == "SUCCESS"
    assert {c["column"] for c in report["columns"]} == set(FEATURES)
    # 5,000 reference rows: Evidently uses distances (higher = drift), never a p-value here.
    assert {c["method"] for c in report["columns"]} <= {"Wasserstein distance (normed)", "Jensen-Shannon distance"}
    assert all(c["drift_when"] == "score at or above threshold" and c["threshold"] == 0.1 for c in report["columns"])


def test_shifted_batch_fails_with_a_finding_per_drifted_column(stream: dict[str, str]) -> None:
    outcome = detect_drift(stream["reference"], stream["drifted"], columns=",".join(FEATURES), html=False)
    result = outcome.result
    assert result.verdict is Verdict.FAILED, result.summary
    assert HTML_FILE not in outcome.files
    drifted = {f.location: f for f in result.findings if f.id == "drift.column"}
    assert {"column age", "column income", "column account_age_months"} <= set(drifted)
    assert result.metrics["drifted_share"] >= 0.5
    age = drifted["column age"]
    assert "Wasserstein distance (normed) score" in age.message and "threshold 0.1 (higher means drift)" in age.message
    assert age.atlas == ("AML.T0031",) and age.owasp_ml == ("ML08:2023",) and not age.passed
    (dataset,) = [f for f in result.findings if f.id == "drift.dataset"]
    assert not dataset.passed and dataset.message.startswith("dataset drift")
    # Evidently's verdict, not ours: every column the report marks FAIL is a finding, and only those.
    report = json.loads(outcome.files[JSON_FILE])
    assert {f"column {c['column']}" for c in report["columns"] if c["status"] == "FAIL"} == set(drifted)

    warned = detect_drift(stream["reference"], stream["drifted"], columns=FEATURES, html=False, warn_only=True)
    assert warned.verdict is Verdict.WARNED


def test_sampling_above_max_rows_is_seeded_and_said(stream: dict[str, str]) -> None:
    first = detect_drift(stream["reference"], stream["normal"], columns=FEATURES, max_rows=800, html=False, random_state=3)
    again = detect_drift(stream["reference"], stream["normal"], columns=FEATURES, max_rows=800, html=False, random_state=3)
    result = first.result
    assert result.metrics["rows_reference"] == 5000 and result.metrics["rows_reference_compared"] == 800
    assert result.metrics["rows_current"] == 1000 and result.metrics["rows_current_compared"] == 800
    assert result.metrics["sampled_reference"] == result.metrics["sampled_current"] == 1.0
    assert "sampled to 800 rows" in result.summary
    assert result.details["sampling"]["sampled_reference"] is True
    assert result.policy["max_rows"] == 800
    report = json.loads(first.files[JSON_FILE])
    assert report["sampling"]["rows_reference_compared"] == 800
    # At 1,000 rows or fewer Evidently switches to p-values (lower = drift).
    assert {c["drift_when"] for c in report["columns"]} == {"score below threshold"}
    assert report["columns"] == json.loads(again.files[JSON_FILE])["columns"]  # same seed, same sample


def test_bad_inputs_are_error_verdicts_that_name_the_problem(stream: dict[str, str], tmp_path: Path) -> None:
    import pandas as pd

    def error(*args: str, **kwargs: object) -> str:
        outcome = detect_drift(*args, html=False, **kwargs)  # type: ignore[arg-type]
        assert outcome.verdict is Verdict.ERROR, outcome.result.summary
        assert outcome.error is not None
        return outcome.result.summary

    assert "does not exist" in error(stream["reference"], str(tmp_path / "missing.csv"))
    assert "has no column 'nope'" in error(stream["reference"], stream["normal"], columns=["age", "nope"])
    assert "'age' is in columns but not a feature" in error(
        stream["reference"], stream["normal"], columns=["age"], id_columns=["age"]
    )

    header_only = tmp_path / "header.csv"
    header_only.write_text(",".join(FEATURES) + "\n")
    assert "holds no rows" in error(stream["reference"], str(header_only), columns=FEATURES)
    empty = tmp_path / "empty.csv"
    empty.write_bytes(b"")
    assert "is empty" in error(stream["reference"], str(empty), columns=FEATURES)

    typed = normal_batch(rows=50)
    typed["income"] = "unknown"
    retyped = tmp_path / "retyped.csv"
    typed.to_csv(retyped, index=False)
    assert "column 'income' is float64 in the reference but object" in error(stream["reference"], str(retyped), columns=FEATURES)

    blank = normal_batch(rows=50).astype({"debt_ratio": "float64"})
    blank["debt_ratio"] = float("nan")
    blank_path = tmp_path / "blank.parquet"
    pd.DataFrame(blank).to_parquet(blank_path)
    assert "'debt_ratio'" in error(stream["reference"], str(blank_path), columns=FEATURES)
    assert "holds no values" in error(stream["reference"], str(blank_path), columns=FEATURES)

    assert "drift_share must be" in error(stream["reference"], stream["normal"], columns=FEATURES, drift_share=0)
    assert "max_rows must be" in error(stream["reference"], stream["normal"], columns=FEATURES, max_rows=0)


def test_module_imports_no_heavy_library() -> None:
    import subprocess
    import sys

    code = (
        "import sys, airflow_mlsecops.gates.drift, airflow_mlsecops.gates.input_detection, airflow_mlsecops.demo.monitoring_data;"
        "print(','.join(m for m in ('evidently', 'sklearn', 'mlflow', 'pandas', 'numpy') if m in sys.modules))"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert done.stdout.strip() == ""


def test_reference_stored_in_mlflow_is_read_and_named_by_its_uri(stream: dict[str, str], home: Settings, tmp_path: Path) -> None:
    from airflow_mlsecops.evidence.digest import sha256_file
    from airflow_mlsecops.exceptions import ConfigurationError
    from airflow_mlsecops.io.locations import load_table_at, resolve_model_ref
    from airflow_mlsecops.io.mlflow_store import MLflowEvidenceStore

    store = MLflowEvidenceStore(home.tracking_uri, home.artifact_root)
    run_id = store.create_run(experiment_name="training", run_name="train")
    store.client.log_artifact(run_id, stream["reference"], artifact_path="data")
    uri = f"runs:/{run_id}/data/reference.csv"
    # The caller fetches (io.locations); the engine judges the table and names it by its URI.
    outcome = detect_drift(load_table_at(uri, store=store), stream["normal"], columns=FEATURES, html=False)
    assert outcome.verdict is Verdict.PASSED, outcome.result.summary
    assert outcome.result.subjects[0].name == uri
    assert outcome.result.subjects[0].sha256 == sha256_file(stream["reference"])
    with pytest.raises(ConfigurationError, match="cannot download"):
        load_table_at(f"runs:/{run_id}/data/nope.csv", store=store)
    with pytest.raises(ConfigurationError, match="cannot resolve the alias 'champion' of model 'nope'"):
        resolve_model_ref("models:/nope@champion", store)


def test_engine_reads_only_local_inputs(stream: dict[str, str]) -> None:
    """Remote locations and unpinned aliases are the caller's to fetch: the engine refuses them (error verdict)."""
    for reference in ("runs:/0123/data/reference.csv", "s3://bucket/reference.csv", "models:/credit-risk/3/reference.csv"):
        outcome = detect_drift(reference, stream["normal"], columns=FEATURES, html=False)
        assert outcome.verdict is Verdict.ERROR and "is not a local path; load it first" in outcome.result.summary
    champion = "models:/credit-risk@champion"
    alias = detect_drift(stream["reference"], stream["normal"], columns=FEATURES, html=False, model=champion)
    assert alias.verdict is Verdict.ERROR and "names a registry alias" in alias.result.summary
    pinned = detect_drift(stream["reference"], stream["normal"], columns=FEATURES, html=False, model="models:/credit-risk/3")
    assert pinned.verdict is Verdict.PASSED, pinned.result.summary
    assert pinned.result.details["model"] == {
        "requested": "models:/credit-risk/3",
        "uri": "models:/credit-risk/3",
        "name": "credit-risk",
        "version": "3",
        "alias": None,
    }


def test_inputs_unavailable_records_the_gates_error_verdict_and_policy() -> None:
    from airflow_mlsecops.exceptions import GateError
    from airflow_mlsecops.gates.drift import inputs_unavailable

    missing = GateError("s3://bucket/batch.csv cannot be read from S3 (NoSuchKey)")
    gone = inputs_unavailable(missing, columns=FEATURES, max_rows=800)
    assert gone.verdict is Verdict.ERROR and gone.result.gate == GATE_NAME
    assert gone.result.summary == "could not run: s3://bucket/batch.csv cannot be read from S3 (NoSuchKey)"
    same = detect_drift("/nonexistent/ref.csv", "/nonexistent/cur.csv", columns=FEATURES, max_rows=800, html=False)
    assert gone.result.policy == same.result.policy
    assert gone.result.tool_versions == same.result.tool_versions
    # A bad argument is reported first, as the gate itself does.
    bad = inputs_unavailable(GateError("unreachable"), drift_share=0)
    assert bad.verdict is Verdict.ERROR and "drift_share must be" in bad.result.summary


# ----------------------------------------------------------------------------- empty batches
# No data to check is never a pass: an empty current batch is an error verdict unless
# allow_empty=True; an empty reference always is.


def _empty(tmp_path: Path, kind: str) -> str:
    if kind == "csv":
        path = tmp_path / "empty.csv"
        path.write_text(",".join(FEATURES) + "\n")
    else:
        path = tmp_path / "empty.parquet"
        normal_batch(rows=20)[list(FEATURES)].iloc[:0].to_parquet(path)
    return str(path)


@pytest.mark.parametrize("kind", ["csv", "parquet"])
@pytest.mark.parametrize("warn_only", [False, True])
def test_an_empty_batch_is_never_a_pass(stream: dict[str, str], tmp_path: Path, kind: str, warn_only: bool) -> None:
    outcome = detect_drift(stream["reference"], _empty(tmp_path, kind), columns=FEATURES, html=False, warn_only=warn_only)
    result = outcome.result
    assert result.verdict is Verdict.ERROR, result.summary
    assert "holds no rows: no data to check is never a pass" in result.summary and "allow_empty=True" in result.summary
    assert [f.id for f in result.findings] == ["drift.empty-batch"]
    assert result.policy["allow_empty"] is False


@pytest.mark.parametrize("kind", ["csv", "parquet"])
def test_allow_empty_accepts_an_empty_batch_visibly(stream: dict[str, str], tmp_path: Path, kind: str) -> None:
    outcome = detect_drift(stream["reference"], _empty(tmp_path, kind), columns=FEATURES, allow_empty=True)
    result = outcome.result
    assert result.verdict is Verdict.WARNED and result.incomplete, result.summary  # nothing compared: never passed
    assert result.not_performed == ("drift.empty-batch",)
    assert result.policy["allow_empty"] is True
    assert [(f.id, f.passed) for f in result.findings] == [("drift.empty-batch", False)]
    assert result.summary.startswith("empty batch accepted (allow_empty=True)")
    assert result.metrics["rows_current"] == 0 and result.metrics["rows_reference"] == 5000
    assert json.loads(outcome.files[JSON_FILE])["empty_batch"] is True and HTML_FILE not in outcome.files


@pytest.mark.parametrize("kind", ["csv", "parquet"])
@pytest.mark.parametrize("allow_empty", [False, True])
def test_an_empty_reference_is_never_a_pass(stream: dict[str, str], tmp_path: Path, kind: str, allow_empty: bool) -> None:
    outcome = detect_drift(_empty(tmp_path, kind), stream["normal"], columns=FEATURES, html=False, allow_empty=allow_empty)
    assert outcome.result.verdict is Verdict.ERROR
    assert "an empty reference cannot vouch for any batch" in outcome.result.summary


def test_allow_empty_still_checks_the_columns(stream: dict[str, str], tmp_path: Path) -> None:
    empty = tmp_path / "other.csv"
    empty.write_text("something_else\n")
    outcome = detect_drift(stream["reference"], str(empty), columns=FEATURES, html=False, allow_empty=True)
    assert outcome.result.verdict is Verdict.ERROR and "has no column" in outcome.result.summary


def test_allow_empty_must_be_a_bool(stream: dict[str, str]) -> None:
    outcome = detect_drift(stream["reference"], stream["normal"], columns=FEATURES, html=False, allow_empty="no")  # type: ignore[arg-type]
    assert outcome.result.verdict is Verdict.ERROR and "allow_empty must be True or False" in outcome.result.summary


def test_a_column_the_batch_lacks_is_a_finding_and_a_declared_label_is_not_compared(stream: dict[str, str]) -> None:
    # Without label_column, the label only the training data has is a feature the batch lacks: rejected, with a hint.
    missing = detect_drift(stream["reference"], stream["normal"], html=False, random_state=1)
    assert missing.verdict is Verdict.FAILED and missing.error is None
    finding = next(f for f in missing.result.findings if f.id == "drift.missing-column")
    assert f"{LABEL!r}" in finding.message and "--label-column" in finding.message
    labelled = detect_drift(stream["reference"], stream["normal"], html=False, random_state=1, label_column=LABEL)
    assert labelled.verdict is Verdict.PASSED, labelled.result.summary
    roles = labelled.result.details["column_roles"]
    assert (
        roles["label_column"] == LABEL
        and {"column": LABEL, "role": "label", "reason": "declared --label-column", "declared": True} in roles["excluded"]
    )
    assert LABEL not in {c["column"] for c in labelled.result.details["columns"]}
