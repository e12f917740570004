#!/usr/bin/env bash
# `make helm-check`: every offline check of the Kubernetes deployment. Tools come from helm/install-tools.sh
# (the tool venv, default .venv-helm). Fails on the first failing step.
#   1. hadolint on the Dockerfile (any finding, info included, fails)
#   2. helm lint of the chart with default and production values
#   3. helm template: default values, production values, and every helm command of docs/deploy-kubernetes.md
#   4. kubernetes-validate --strict of every rendered manifest against Kubernetes $KUBERNETES_VERSION
#   5. helm/check_rendered.py: the hardening of every container, NetworkPolicy coverage, no Secret rendered
#   6. checkov --framework kubernetes on the rendered manifests (skips only by annotations with a reason)
set -euo pipefail
cd "$(dirname "$0")/.."

TOOLS="${1:-.venv-helm}"
BIN="$TOOLS/bin"
CHART=helm/airflow-mlsecops
KUBERNETES_VERSION="${KUBERNETES_VERSION:-1.33.0}"
OUT="$(mktemp -d)"
trap 'rm -rf "$OUT"' EXIT
step() { printf '\nhelm-check: %s\n' "$*"; }

step "hadolint Dockerfile"
"$BIN/hadolint" --failure-threshold info Dockerfile

step "helm lint"
"$BIN/helm" lint --strict "$CHART"
"$BIN/helm" lint --strict "$CHART" -f "$CHART/ci/production-values.yaml"

step "helm template (default values, production values, the commands of docs/deploy-kubernetes.md)"
"$BIN/helm" template mlsecops "$CHART" --namespace airflow >"$OUT/default.yaml"
"$BIN/helm" template mlsecops "$CHART" --namespace airflow -f "$CHART/ci/production-values.yaml" >"$OUT/production.yaml"
"$BIN/python" helm/doc_commands.py "$BIN/helm" docs/deploy-kubernetes.md "$OUT"

step "kubernetes-validate --strict (Kubernetes $KUBERNETES_VERSION)"
"$BIN/kubernetes-validate" --strict --quiet --kubernetes-version "$KUBERNETES_VERSION" "$OUT"/*.yaml

step "hardening of every rendered container (helm/check_rendered.py)"
# This chart's output only (official-*.yaml, rendered when HELM_CHECK_AIRFLOW_CHART is set, is the official chart's).
OURS=("$OUT"/default.yaml "$OUT"/production.yaml "$OUT"/doc-*.yaml)
"$BIN/python" helm/check_rendered.py "${OURS[@]}" --airflow-values helm/values-airflow.yaml

step "checkov --framework kubernetes"
mkdir "$OUT/ours" && cp "${OURS[@]}" "$OUT/ours/"
"$BIN/checkov" --framework kubernetes --skip-download --quiet --compact --directory "$OUT/ours"

printf '\nhelm-check: all checks passed\n'
