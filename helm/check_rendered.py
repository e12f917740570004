"""Check rendered Kubernetes manifests for the hardening airflow-mlsecops promises, and fail closed.

``make helm-check`` renders the chart (default values, production values and every install command of
docs/deploy-kubernetes.md) and runs this on the output::

    python helm/check_rendered.py rendered/*.yaml --airflow-values helm/values-airflow.yaml

Every container and init container of every workload must run as non-root with a read-only root
filesystem, no privilege escalation, every capability dropped, the RuntimeDefault (or Localhost)
seccomp profile, CPU and memory requests and limits, and an emptyDir at /tmp; pods must not mount a
service-account token, use host namespaces or hostPath volumes; every workload's pods must be selected
by a NetworkPolicy that restricts both ingress and egress; no Secret may be rendered (values hold
only names of existing Secrets). With ``--airflow-values``, the policy ConfigMap that the official
chart's values mount must be one that the rendered output defines. A file with no workload at all is
an error too: a check that saw nothing has not passed.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import yaml  # noqa: TID253 - a standalone script, never imported at DAG parse

WORKLOAD_POD_SPEC_PATHS: dict[str, tuple[str, ...]] = {
    "Pod": ("spec",),
    "Deployment": ("spec", "template", "spec"),
    "StatefulSet": ("spec", "template", "spec"),
    "DaemonSet": ("spec", "template", "spec"),
    "ReplicaSet": ("spec", "template", "spec"),
    "Job": ("spec", "template", "spec"),
    "CronJob": ("spec", "jobTemplate", "spec", "template", "spec"),
}
ALLOWED_SECCOMP = {"RuntimeDefault", "Localhost"}
Manifest = dict[str, Any]


def load_manifests(path: Path) -> list[Manifest]:
    """Every object of a multi-document YAML file (empty documents skipped)."""
    with path.open(encoding="utf-8") as stream:
        return [doc for doc in yaml.safe_load_all(stream) if isinstance(doc, dict)]


def _dig(obj: Manifest, keys: tuple[str, ...]) -> Any:
    for key in keys:
        if not isinstance(obj, dict):
            return None
        obj = obj.get(key)  # type: ignore[assignment]
    return obj


def _pod_labels(manifest: Manifest) -> dict[str, str]:
    if manifest["kind"] == "Pod":
        return dict(_dig(manifest, ("metadata", "labels")) or {})
    template_path = WORKLOAD_POD_SPEC_PATHS[manifest["kind"]][:-1]
    return dict(_dig(manifest, (*template_path, "metadata", "labels")) or {})


def _containers(pod_spec: Manifest) -> Iterator[Manifest]:
    yield from pod_spec.get("initContainers") or []
    yield from pod_spec.get("containers") or []


def check_container(container: Manifest, pod_spec: Manifest) -> list[str]:
    """What is missing from one container's hardening (the pod's security context counts where Kubernetes applies it)."""
    problems: list[str] = []
    ctx = container.get("securityContext") or {}
    pod_ctx = pod_spec.get("securityContext") or {}

    def effective(key: str) -> Any:
        return ctx[key] if key in ctx else pod_ctx.get(key)

    if effective("runAsNonRoot") is not True:
        problems.append("runAsNonRoot is not true")
    if effective("runAsUser") == 0:
        problems.append("runAsUser is 0 (root)")
    if ctx.get("readOnlyRootFilesystem") is not True:
        problems.append("readOnlyRootFilesystem is not true")
    if ctx.get("allowPrivilegeEscalation") is not False:
        problems.append("allowPrivilegeEscalation is not false")
    if ctx.get("privileged") is True:
        problems.append("privileged is true")
    capabilities = ctx.get("capabilities") or {}
    if "ALL" not in (capabilities.get("drop") or []):
        problems.append("capabilities.drop does not contain ALL")
    if capabilities.get("add"):
        problems.append(f"capabilities.add is {capabilities['add']}")
    seccomp = (effective("seccompProfile") or {}).get("type")
    if seccomp not in ALLOWED_SECCOMP:
        problems.append(f"seccompProfile is {seccomp or 'unset'}, not RuntimeDefault or Localhost")
    resources = container.get("resources") or {}
    for kind in ("requests", "limits"):
        for resource in ("cpu", "memory"):
            if not (resources.get(kind) or {}).get(resource):
                problems.append(f"resources.{kind}.{resource} is not set")
    image = str(container.get("image", ""))
    if "@sha256:" not in image and (image.endswith(":latest") or ":" not in image.rsplit("/", 1)[-1]):
        problems.append(f"image {image!r} has no fixed tag or digest")
    empty_dirs = {v["name"] for v in pod_spec.get("volumes") or [] if "emptyDir" in v}
    if not any(m.get("mountPath") == "/tmp" and m.get("name") in empty_dirs for m in container.get("volumeMounts") or []):
        problems.append("no emptyDir mounted at /tmp (the root filesystem is read-only)")
    return problems


def check_pod_spec(pod_spec: Manifest) -> list[str]:
    """What is wrong at pod level: token mounts and host access."""
    problems: list[str] = []
    if pod_spec.get("automountServiceAccountToken") is not False:
        problems.append("automountServiceAccountToken is not false")
    for key in ("hostNetwork", "hostPID", "hostIPC"):
        if pod_spec.get(key):
            problems.append(f"{key} is true")
    for volume in pod_spec.get("volumes") or []:
        if "hostPath" in volume:
            problems.append(f"volume {volume.get('name')!r} is a hostPath")
    if not list(_containers(pod_spec)):
        problems.append("no container")
    return problems


def _selects(policy: Manifest, namespace: str | None, labels: dict[str, str]) -> bool:
    if _dig(policy, ("metadata", "namespace")) != namespace:
        return False
    selector = _dig(policy, ("spec", "podSelector")) or {}
    if selector.get("matchExpressions"):
        return False  # not evaluated here: only matchLabels selectors count
    wanted = selector.get("matchLabels") or {}
    return all(labels.get(k) == v for k, v in wanted.items())


def check_manifests(manifests: list[Manifest]) -> tuple[list[str], int]:
    """All problems of one rendered output, and how many containers were checked."""
    problems: list[str] = []
    checked = 0
    policies = [m for m in manifests if m.get("kind") == "NetworkPolicy"]
    for manifest in manifests:
        kind = manifest.get("kind", "?")
        namespace = _dig(manifest, ("metadata", "namespace"))
        where = f"{kind}/{_dig(manifest, ('metadata', 'name'))}"
        if kind == "Secret":
            problems.append(f"{where}: the chart renders a Secret; values must only name existing Secrets")
        if kind == "ServiceAccount" and manifest.get("automountServiceAccountToken") is not False:
            problems.append(f"{where}: automountServiceAccountToken is not false")
        if kind not in WORKLOAD_POD_SPEC_PATHS:
            continue
        pod_spec = _dig(manifest, WORKLOAD_POD_SPEC_PATHS[kind]) or {}
        problems += [f"{where}: {p}" for p in check_pod_spec(pod_spec)]
        for container in _containers(pod_spec):
            checked += 1
            problems += [f"{where} container {container.get('name')!r}: {p}" for p in check_container(container, pod_spec)]
        labels = _pod_labels(manifest)
        covering = [p for p in policies if _selects(p, namespace, labels)]
        types = {t for p in covering for t in _dig(p, ("spec", "policyTypes")) or []}
        if not {"Ingress", "Egress"} <= types:
            problems.append(f"{where}: its pods are not selected by NetworkPolicies restricting both Ingress and Egress")
    return problems, checked


def check_airflow_values(path: Path, manifests: list[Manifest]) -> list[str]:
    """The official chart's values must mount a policy ConfigMap that the rendered output defines."""
    values = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    defined = {_dig(m, ("metadata", "name")) for m in manifests if m.get("kind") == "ConfigMap"}
    volumes = list(values.get("volumes") or [])
    for component in ("workers", "dagProcessor", "scheduler", "triggerer", "apiServer"):
        volumes += (values.get(component) or {}).get("extraVolumes") or []
    mounted = {str(_dig(v, ("configMap", "name"))) for v in volumes if _dig(v, ("configMap", "name"))}
    policy_maps = {name for name in mounted if name.endswith("-policy")}
    if not policy_maps:
        return [f"{path}: mounts no policy ConfigMap (a configMap volume named *-policy)"]
    return [
        f"{path}: mounts ConfigMap {name!r}, which the rendered chart does not define" for name in sorted(policy_maps - defined)
    ]


def main(argv: list[str] | None = None) -> int:
    """Exit 0 when every file passes, 1 when a check fails, 2 when a file cannot be read."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("files", nargs="+", type=Path, help="rendered manifests (helm template output)")
    parser.add_argument("--airflow-values", type=Path, help="values of the official Airflow chart to cross-check")
    args = parser.parse_args(argv)
    failures: list[str] = []
    everything: list[Manifest] = []
    for path in args.files:
        try:
            manifests = load_manifests(path)
        except (OSError, yaml.YAMLError) as error:
            print(f"check_rendered: cannot read {path}: {error}", file=sys.stderr)
            return 2
        problems, checked = check_manifests(manifests)
        if checked == 0:
            problems.append("no container found: nothing was checked")
        failures += [f"{path}: {p}" for p in problems]
        everything += manifests
        print(f"check_rendered: {path}: {len(manifests)} objects, {checked} containers, {len(problems)} problems")
    if args.airflow_values:
        failures += check_airflow_values(args.airflow_values, everything)
    for failure in failures:
        print(f"FAILED {failure}", file=sys.stderr)
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
