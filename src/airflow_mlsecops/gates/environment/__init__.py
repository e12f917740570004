"""Training-environment gate: the packages installed where the model was trained, as a CycloneDX BOM,
checked against the offline OSV data of the SBOM gate and against the model's declared requirements.

A self-contained run (a model declaring scikit-learn 1.0.0 and a one-file freeze of what was
installed)::

    import pathlib, tempfile
    from airflow_mlsecops.gates.environment import check_training_environment

    root = pathlib.Path(tempfile.mkdtemp())
    (root / "model").mkdir()
    (root / "model" / "model.onnx").write_bytes(b"weights")
    (root / "model" / "requirements.txt").write_text("scikit-learn==1.0.0\\n")
    (root / "freeze.txt").write_text("scikit-learn==1.5.2\\n")
    outcome = check_training_environment(str(root / "model"), freeze=str(root / "freeze.txt"),
                                         require_vulnerability_check=False)
    print(outcome.verdict.value, [f.id for f in outcome.result.failed_findings][:1])
    # failed ['training-environment.mismatch.scikit-learn']

Without ``site_packages`` or ``freeze`` it reads the running interpreter: run it in the worker image
that trained the model. The rules are in :mod:`airflow_mlsecops.gates.environment.gate`.
"""

from airflow_mlsecops.gates.environment.compare import Difference, compare_environment
from airflow_mlsecops.gates.environment.gate import (
    BOM_FILE,
    GATE_NAME,
    NOT_PERFORMED,
    REPORT_FILE,
    check_training_environment,
    environment_policy,
    evaluate_environment,
    inputs_unavailable,
    load_environment,
)
from airflow_mlsecops.gates.environment.inventory import (
    Distribution,
    Environment,
    current_environment,
    freeze_environment,
    model_modules,
    site_packages_environment,
)

__all__ = [
    "BOM_FILE",
    "GATE_NAME",
    "NOT_PERFORMED",
    "REPORT_FILE",
    "Difference",
    "Distribution",
    "Environment",
    "check_training_environment",
    "compare_environment",
    "current_environment",
    "environment_policy",
    "evaluate_environment",
    "freeze_environment",
    "inputs_unavailable",
    "load_environment",
    "model_modules",
    "site_packages_environment",
]
