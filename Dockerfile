# syntax=docker/dockerfile:1
# The Airflow image with airflow-mlsecops installed: the official apache/airflow image of the supported
# Airflow version, plus the suite and its `postgres` and `celery` extras. The same image runs every
# Airflow component (official Helm chart, helm/values-airflow.yaml) and the MLflow server and ledger
# checkpoint CronJob of helm/airflow-mlsecops. Build and push: docs/deploy-kubernetes.md.
#
#   docker build -t registry.example.com/airflow-mlsecops:0.1.0 .
ARG AIRFLOW_VERSION=3.3.2
ARG PYTHON_VERSION=3.12

# Stage 1: build the suite's wheel (pure Python). Nothing of this stage reaches the final image.
# The sources are copied owned by airflow (the stage's user): setuptools writes build/ and *.egg-info beside them.
FROM apache/airflow:${AIRFLOW_VERSION}-python${PYTHON_VERSION} AS wheel
COPY --chown=airflow:root pyproject.toml README.md /tmp/airflow-mlsecops/
COPY --chown=airflow:root src /tmp/airflow-mlsecops/src
RUN pip wheel --no-cache-dir --no-deps --wheel-dir /tmp/wheels /tmp/airflow-mlsecops

# Stage 2: the runtime image. The wheel is bind-mounted for the one install step, so it leaves no file
# behind, and no compiler or build tool is added (every dependency ships wheels).
FROM apache/airflow:${AIRFLOW_VERSION}-python${PYTHON_VERSION}
ARG AIRFLOW_VERSION
ARG MLSECOPS_VERSION=0.1.0
LABEL org.opencontainers.image.title="airflow-mlsecops" \
      org.opencontainers.image.description="Apache Airflow ${AIRFLOW_VERSION} with the airflow-mlsecops security gates" \
      org.opencontainers.image.version="${MLSECOPS_VERSION}" \
      org.opencontainers.image.licenses="Apache-2.0"
# The official image's unprivileged user `airflow` (uid 50000, gid 0), by number so a runtime can check runAsNonRoot.
USER 50000
# Airflow's documented way to add packages to its image: name `apache-airflow==<the image's version>` in the
# same install, so pip cannot move Airflow; the suite is pinned to the exact wheel (and so version) built above.
RUN --mount=type=bind,from=wheel,source=/tmp/wheels,target=/tmp/wheels \
    pip install --no-cache-dir \
      "apache-airflow==${AIRFLOW_VERSION}" \
      "airflow-mlsecops[postgres,celery] @ file:///tmp/wheels/airflow_mlsecops-${MLSECOPS_VERSION}-py3-none-any.whl"
# The example DAGs (and their data and expectation suites), for an optional LocalDagBundle
# (helm/values-airflow.yaml); not on the default DAG folder, so nothing runs unless the bundle is configured.
COPY --chown=airflow:root dags /opt/airflow/mlsecops-examples/dags
# No image-wide HEALTHCHECK: one image serves several roles (api-server, scheduler, worker, DAG processor,
# triggerer, MLflow server, a CronJob), each with its own probe in the Helm charts; Kubernetes ignores
# HEALTHCHECK anyway. NONE states this explicitly (and overrides anything inherited).
HEALTHCHECK NONE
