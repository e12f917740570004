"""The offline checks of the Kubernetes deployment (helm/check_rendered.py, helm/doc_commands.py).

Each hardening rule is broken once in an otherwise good manifest and must be reported: a check that
passes a weakened pod would let ``make helm-check`` pass it too. The tests that render the chart need
the ``helm`` of the tool venv that ``make helm-check`` installs (``.venv-helm``; ``.ci/run`` runs it
before ``make test``) and are skipped without it.
"""

from __future__ import annotations

import importlib.util
import subprocess
import sys
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
import yaml

REPO = Path(__file__).resolve().parents[2]
HELM = REPO / ".venv-helm" / "bin" / "helm"
CHART = REPO / "helm" / "airflow-mlsecops"
needs_helm = pytest.mark.skipif(not HELM.is_file(), reason="no .venv-helm/bin/helm: run make helm-check once")


def _load(name: str) -> ModuleType:
    spec = importlib.util.spec_from_file_location(f"helm_{name}", REPO / "helm" / f"{name}.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


check_rendered = _load("check_rendered")
doc_commands = _load("doc_commands")

GOOD = """
apiVersion: v1
kind: ServiceAccount
metadata: {name: app, namespace: ns}
automountServiceAccountToken: false
---
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {name: app, namespace: ns}
spec:
  podSelector: {matchLabels: {app: web}}
  policyTypes: [Ingress, Egress]
---
apiVersion: apps/v1
kind: Deployment
metadata: {name: web, namespace: ns}
spec:
  selector: {matchLabels: {app: web}}
  template:
    metadata: {labels: {app: web}}
    spec:
      automountServiceAccountToken: false
      securityContext: {runAsNonRoot: true, seccompProfile: {type: RuntimeDefault}}
      containers:
        - name: web
          image: registry.example.com/web:1.0
          securityContext:
            readOnlyRootFilesystem: true
            allowPrivilegeEscalation: false
            capabilities: {drop: [ALL]}
          resources: {requests: {cpu: 10m, memory: 10Mi}, limits: {cpu: 20m, memory: 20Mi}}
          volumeMounts: [{name: tmp, mountPath: /tmp}]
      volumes: [{name: tmp, emptyDir: {}}]
"""


def _good() -> list[dict[str, Any]]:
    return [doc for doc in yaml.safe_load_all(GOOD) if doc]


def _pod(manifests: list[dict[str, Any]]) -> dict[str, Any]:
    return manifests[2]["spec"]["template"]["spec"]


def _ctx(pod: dict[str, Any]) -> dict[str, Any]:
    return pod["containers"][0]["securityContext"]


def test_a_hardened_manifest_passes() -> None:
    problems, checked = check_rendered.check_manifests(_good())
    assert (problems, checked) == ([], 1)


def _drop_pod_seccomp(pod: dict[str, Any]) -> None:
    del pod["securityContext"]["seccompProfile"]


WEAKENINGS = {
    "runAsNonRoot is not true": lambda pod: pod["securityContext"].pop("runAsNonRoot"),
    "runAsUser is 0": lambda pod: _ctx(pod).update(runAsUser=0),
    "readOnlyRootFilesystem is not true": lambda pod: _ctx(pod).update(readOnlyRootFilesystem=False),
    "allowPrivilegeEscalation is not false": lambda pod: _ctx(pod).pop("allowPrivilegeEscalation"),
    "privileged is true": lambda pod: _ctx(pod).update(privileged=True),
    "capabilities.drop does not contain ALL": lambda pod: _ctx(pod).update(capabilities={"drop": ["NET_RAW"]}),
    "capabilities.add": lambda pod: _ctx(pod)["capabilities"].update(add=["NET_ADMIN"]),
    "seccompProfile is unset": _drop_pod_seccomp,
    "seccompProfile is Unconfined": lambda pod: pod["securityContext"].update(seccompProfile={"type": "Unconfined"}),
    "resources.limits.memory is not set": lambda pod: pod["containers"][0]["resources"]["limits"].pop("memory"),
    "resources.requests.cpu is not set": lambda pod: pod["containers"][0]["resources"]["requests"].pop("cpu"),
    "has no fixed tag or digest": lambda pod: pod["containers"][0].update(image="registry.example.com/web:latest"),
    "no emptyDir mounted at /tmp": lambda pod: pod.update(volumes=[{"name": "tmp", "hostPath": {"path": "/tmp"}}]),
    "volume 'tmp' is a hostPath": lambda pod: pod.update(volumes=[{"name": "tmp", "hostPath": {"path": "/tmp"}}]),
    "automountServiceAccountToken is not false": lambda pod: pod.pop("automountServiceAccountToken"),
    "hostNetwork is true": lambda pod: pod.update(hostNetwork=True),
    "container 'init'": lambda pod: pod.update(initContainers=[{"name": "init", "image": "registry.example.com/web:1.0"}]),
}


@pytest.mark.parametrize("expected", sorted(WEAKENINGS))
def test_each_weakened_rule_is_reported(expected: str) -> None:
    manifests = _good()
    WEAKENINGS[expected](_pod(manifests))
    problems, _ = check_rendered.check_manifests(manifests)
    assert any(expected in problem for problem in problems), problems


def test_a_pod_without_network_policy_a_rendered_secret_and_a_token_mounting_account_are_reported() -> None:
    manifests = _good()
    manifests[1]["spec"]["policyTypes"] = ["Ingress"]
    manifests[0]["automountServiceAccountToken"] = True
    manifests.append({"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "leak", "namespace": "ns"}})
    problems, _ = check_rendered.check_manifests(manifests)
    assert any("not selected by NetworkPolicies restricting both Ingress and Egress" in p for p in problems)
    assert any(p.startswith("ServiceAccount/app: automountServiceAccountToken") for p in problems)
    assert any(p.startswith("Secret/leak: the chart renders a Secret") for p in problems)


def test_a_file_without_any_container_fails(tmp_path: Path) -> None:
    empty = tmp_path / "empty.yaml"
    empty.write_text("apiVersion: v1\nkind: ConfigMap\nmetadata: {name: x}\n", encoding="utf-8")
    assert check_rendered.main([str(empty)]) == 1
    assert check_rendered.main([str(tmp_path / "missing.yaml")]) == 2


def test_the_airflow_values_must_mount_a_policy_configmap_the_chart_renders(tmp_path: Path) -> None:
    values = tmp_path / "values.yaml"
    values.write_text("volumes:\n  - name: p\n    configMap: {name: other-policy}\n", encoding="utf-8")
    rendered = [{"kind": "ConfigMap", "metadata": {"name": "mlsecops-policy"}}]
    assert check_rendered.check_airflow_values(values, rendered) == [
        f"{values}: mounts ConfigMap 'other-policy', which the rendered chart does not define"
    ]
    values.write_text("volumes: []\n", encoding="utf-8")
    assert "mounts no policy ConfigMap" in check_rendered.check_airflow_values(values, rendered)[0]


def test_doc_commands_join_lines_expand_exports_and_drop_cluster_only_flags() -> None:
    markdown = (
        "```bash\nexport REG=registry.example.com\n"
        "helm upgrade --install rel helm/airflow-mlsecops --namespace ns \\\n"
        "  --create-namespace --wait --timeout 5m --set image.repository=$REG/img\n```\n"
        "```yaml\nhelm install not-a-shell-block x\n```\n"
    )
    lines = doc_commands.shell_lines(markdown)
    assert lines[1].startswith("helm upgrade --install rel helm/airflow-mlsecops --namespace ns --create-namespace")
    variables = {"REG": "registry.example.com"}
    command = doc_commands.parse_helm(doc_commands.expand(lines[1], variables))
    assert (command.release, command.chart) == ("rel", "helm/airflow-mlsecops")
    assert doc_commands.template_args(command, Path("chart")) == [
        "template", "rel", "chart", "--namespace", "ns", "--set", "image.repository=registry.example.com/img",
    ]  # fmt: skip
    assert doc_commands.parse_helm("kubectl get pods") is None


def test_doc_commands_refuse_an_unknown_variable_and_a_missing_values_file() -> None:
    with pytest.raises(doc_commands.DocCommandError, match=r"uses \$TAG, which the doc never exports"):
        doc_commands.expand("helm install r c --set image.tag=$TAG", {})
    command = doc_commands.parse_helm("helm install r apache-airflow/airflow -f helm/no-such-values.yaml")
    with pytest.raises(doc_commands.DocCommandError, match=r"values file helm/no-such-values\.yaml does not exist"):
        doc_commands.check_values_files(command)


@needs_helm
def test_a_doc_without_a_command_for_this_chart_fails(tmp_path: Path) -> None:
    doc = tmp_path / "doc.md"
    doc.write_text("```bash\nhelm install airflow apache-airflow/airflow -f helm/values-airflow.yaml\n```\n", encoding="utf-8")
    assert doc_commands.main([str(HELM), str(doc), str(tmp_path / "out")]) == 1


def test_the_charts_default_policy_is_the_projects_example_policy() -> None:
    # The example DAGs comply with policy/mlsecops-policy.yaml; a drifted chart default would reject them.
    values = yaml.safe_load((CHART / "values.yaml").read_text(encoding="utf-8"))
    example = yaml.safe_load((REPO / "policy" / "mlsecops-policy.yaml").read_text(encoding="utf-8"))
    assert yaml.safe_load(values["policy"]["content"]) == example


def _template(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(HELM), "template", "mlsecops", str(CHART), *args], capture_output=True, text=True, check=False)


@needs_helm
@pytest.mark.parametrize("values", [[], ["-f", str(CHART / "ci" / "production-values.yaml")]], ids=["default", "production"])
def test_the_rendered_chart_is_hardened(values: list[str]) -> None:
    result = _template("--namespace", "airflow", *values)
    assert result.returncode == 0, result.stderr
    manifests = [doc for doc in yaml.safe_load_all(result.stdout) if doc]
    problems, checked = check_rendered.check_manifests(manifests)
    assert (problems, checked) == ([], 2)
    kinds = sorted(m["kind"] for m in manifests)
    assert kinds == sorted(["ConfigMap", "CronJob", "Deployment", "Service", *["NetworkPolicy", "ServiceAccount"] * 2])


@needs_helm
@pytest.mark.parametrize(
    ("settings", "message"),
    [
        (["signing.mode=vault"], "at '/signing/mode': value must be one of 'secret', 'kms'"),
        (["signing.mode=kms"], "set signing.kms.keyRef to awskms:///alias/NAME"),
        (["signing.mode=kms", "signing.kms.keyRef=awskms:///alias/k"], "set signing.kms.roleArn"),
        (["signing.kms.keyRef=alias/k"], "at '/signing/kms/keyRef'"),
        (["containerSecurityContext.readOnlyRootFilesystem=false"], "readOnlyRootFilesystem': value must be true"),
        (["image.tag=latest"], "image.tag must not be latest"),
        (["networkPolicy.database.cidrs=null"], "/networkPolicy/database"),
        (["ledger.existingSecret="], "/ledger/existingSecret"),
    ],
)
def test_bad_values_fail_the_render_with_a_message_naming_them(settings: list[str], message: str) -> None:
    result = _template(*(arg for setting in settings for arg in ("--set", setting)))
    assert result.returncode != 0
    assert message in result.stderr


@needs_helm
def test_kms_signing_annotates_the_checkpoint_account_for_irsa() -> None:
    role = "arn:aws:iam::123456789012:role/checkpoints"
    settings = ["signing.mode=kms", "signing.kms.keyRef=awskms:///alias/k", f"signing.kms.roleArn={role}"]
    result = _template(*(arg for setting in settings for arg in ("--set", setting)))
    assert result.returncode == 0, result.stderr
    manifests = {(m["kind"], m["metadata"]["name"]): m for m in yaml.safe_load_all(result.stdout) if m}
    account = manifests[("ServiceAccount", "mlsecops-ledger-checkpoint")]
    assert account["metadata"]["annotations"] == {"eks.amazonaws.com/role-arn": role}
    job = manifests[("CronJob", "mlsecops-ledger-checkpoint")]["spec"]["jobTemplate"]["spec"]["template"]["spec"]
    env = {e["name"]: e.get("value") for e in job["containers"][0]["env"]}
    assert env["MLSECOPS_SIGNING_KEY"] == "awskms:///alias/k"
    assert "signing-key" not in {v["name"] for v in job["volumes"]}
    assert job["containers"][0]["command"][:3] == ["mlsecops", "ledger", "checkpoint"]
