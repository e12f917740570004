"""The PII scan on Spark (``engine="spark"``): the same verdicts, finding ids and counts as pandas on the same files.

Needs Java 17+ and pyspark; the session-scoped ``spark`` fixture (``local[2]``) skips outside CI unless
``MLSECOPS_TEST_SPARK=1``.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

from airflow_mlsecops.evidence.digest import sha256_file
from airflow_mlsecops.evidence.models import Verdict
from airflow_mlsecops.gates.pii import scan_pii
from tests.gates.test_pii_stream import _rich_frame, _summary

pytestmark = pytest.mark.slow


def _spark(data: str, spark: Any, **kwargs: Any) -> Any:
    return scan_pii(data, engine="spark", spark_master=spark.sparkContext.master, **kwargs)


@pytest.fixture(scope="module")
def files(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("spark-pii")
    clean = root / "clean.csv"
    pd.DataFrame(
        {"id": range(300), "amount": [i * 1.5 for i in range(300)], "city": ["Oslo", "Lima", "Pune"] * 100, "ok": [True] * 300}
    ).to_csv(clean, index=False)
    rich = root / "rich.csv"
    frame = _rich_frame(1200, seed=5)
    frame.to_csv(rich, index=False)
    parts = root / "parts"
    parts.mkdir()
    for index, start in enumerate(range(0, 1200, 400)):
        frame.iloc[start : start + 400].to_parquet(parts / f"part-{index:05d}.parquet", index=False)
    whole_parquet = root / "whole.parquet"
    frame.to_parquet(whole_parquet, index=False)
    multiline = root / "multiline.csv"
    multiline.write_text('id,notes\n1,"first line\nwrite to ann@example.com"\n2,"say ""hi"" to 123-45-6789"\n3,NA\n4,plain\n')
    return {"clean": clean, "rich": rich, "parts": parts, "whole_parquet": whole_parquet, "multiline": multiline}


def test_clean_file_passes_on_spark(spark: Any, files: dict[str, Path]) -> None:
    outcome = _spark(str(files["clean"]), spark)
    result = outcome.result
    assert result.verdict is Verdict.PASSED, result.summary
    assert result.details["engine"] == "spark" and result.details["spark"]["master"].startswith("local")
    assert [s.sha256 for s in result.subjects] == [sha256_file(files["clean"])]
    assert _summary(outcome) == _summary(scan_pii(str(files["clean"])))


def test_pii_file_fails_on_spark_with_the_pandas_findings(spark: Any, files: dict[str, Path]) -> None:
    pandas_outcome = scan_pii(str(files["rich"]))
    spark_outcome = _spark(str(files["rich"]), spark)
    assert spark_outcome.result.verdict is Verdict.FAILED
    ids = {f.id for f in spark_outcome.result.findings}
    assert {"pii.email", "pii.us_ssn", "pii.credit_card"} <= ids
    assert _summary(spark_outcome) == _summary(pandas_outcome)  # same ids, counts, samples, notes, column types
    assert json.loads(spark_outcome.files["pii_report.json"])["engine"] == "spark"


def test_parquet_parts_on_spark_match_pandas(spark: Any, files: dict[str, Path]) -> None:
    whole = scan_pii(str(files["whole_parquet"]))
    on_spark = _spark(str(files["parts"]), spark)
    assert len(on_spark.result.subjects) == 3
    assert _summary(on_spark) == _summary(whole)


def test_quoted_multiline_cells_and_missing_values_on_spark(spark: Any, files: dict[str, Path]) -> None:
    pandas_outcome = scan_pii(str(files["multiline"]))
    spark_outcome = _spark(str(files["multiline"]), spark)
    assert spark_outcome.result.verdict is Verdict.FAILED
    assert _summary(spark_outcome) == _summary(pandas_outcome)


def test_spark_sample_is_the_streamed_reservoir_sample(spark: Any, files: dict[str, Path]) -> None:
    streamed = scan_pii(str(files["rich"]), batch_rows=100, max_rows=250, sample_seed=4)
    on_spark = _spark(str(files["rich"]), spark, max_rows=250, sample_seed=4)
    assert on_spark.result.details["rows_scanned"] == 250 and on_spark.result.details["sample_seed"] == 4
    assert _summary(on_spark)["findings"] == _summary(streamed)["findings"]


def test_spark_refuses_a_loaded_table_and_s3(spark: Any, files: dict[str, Path]) -> None:
    from airflow_mlsecops.io.tabular import load_table

    loaded = _spark(load_table(str(files["clean"])), spark)  # type: ignore[arg-type]
    assert loaded.result.verdict is Verdict.ERROR and "pass its path" in loaded.result.summary
    remote = _spark("s3://bucket/table/", spark)
    assert remote.result.verdict is Verdict.ERROR and "s3://" in remote.result.summary
