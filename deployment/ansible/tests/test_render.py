"""The playbook's render-only path against the chart check's own renderer.

`ansible-playbook app-deploy.yaml -e app_env=<env> --tags render` runs the playbook's variable
logic (chart path, values files, release, namespace, release values) through
kubernetes.core.helm_template and tools/helm-sdk. The expected side is
deployment/helm/tests/render.py (what scripts/check-charts.sh renders), given the same chart
and values file plus the overrides this deployment promises: the release uses the Secret the
playbook creates (the names in docs/contract.md) and the chart creates none.
"""

from __future__ import annotations

import copy
import importlib.util
from pathlib import Path
from typing import Any

import pytest
import yaml

from conftest import REPO_ROOT, run_playbook

ENVIRONMENTS = ("dev", "prod")
RELEASE = "abn-stack"
SECRET_NAME = "abn-stack-integration-key"
#: The dev log-provider's TLS Secret, which the chart makes (genCA/genSignedCert): a new pair on
#: every offline render (no cluster to look the existing one up in), so compared without its data.
TLS_SECRET_NAME = "abn-stack-log-provider-tls"
SECRET_KEY = "integration-key"
PLAYBOOK_OVERRIDES = {
    "backend-api": {
        "integrationKeySecretName": SECRET_NAME,
        "integrationKeySecretKey": SECRET_KEY,
        "integrationKey": {"create": False},
    }
}


def chart_check_renderer():
    """deployment/helm/tests/render.py, loaded by path (its directory has its own conftest)."""
    path = REPO_ROOT / "deployment" / "helm" / "tests" / "render.py"
    spec = importlib.util.spec_from_file_location("abn_stack_chart_render", path)
    assert spec is not None and spec.loader is not None, f"cannot load {path}"
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


renderer = chart_check_renderer()


def canonical(objects: list[dict[str, Any]]) -> list[str]:
    """Order-free comparison (helm and render.py order differently); the chart-made TLS Secret's
    generated data left out (render.comparable)."""
    return renderer.comparable(objects)


def chart_check_render(env: str, overrides: dict[str, Any] | None) -> list[dict[str, Any]]:
    renderer.build_dependencies(renderer.UMBRELLA)
    return renderer.render_objects(
        renderer.UMBRELLA,
        [renderer.env_values_file(env)],
        release=RELEASE,
        namespace=f"abn-stack-{env}",
        extra_values=copy.deepcopy(overrides),
    )


@pytest.fixture(scope="module")
def playbook_renders(tmp_path_factory: pytest.TempPathFactory) -> dict[str, list[dict[str, Any]]]:
    out = tmp_path_factory.mktemp("render")
    renders = {}
    for env in ENVIRONMENTS:
        result = run_playbook("-e", f"app_env={env}", "--tags", "render", "-e", f"render_output_dir={out}")
        assert result.returncode == 0, result.stdout + result.stderr
        # No cluster, no key: the pre-flight and deploy tasks do not run on the render tag.
        assert "Create the namespace" not in result.stdout
        assert "Check that the kube context exists" not in result.stdout
        stream = (out / f"{env}.yaml").read_text(encoding="utf-8")
        renders[env] = [doc for doc in yaml.safe_load_all(stream) if doc]
    return renders


@pytest.mark.parametrize("env", ENVIRONMENTS)
def test_playbook_render_matches_the_chart_check_render(env: str, playbook_renders) -> None:
    expected = chart_check_render(env, PLAYBOOK_OVERRIDES)

    assert len(playbook_renders[env]) == len(expected) > 0
    assert canonical(playbook_renders[env]) == canonical(expected)


@pytest.mark.parametrize("env", ENVIRONMENTS)
def test_playbook_render_is_the_environments_release(env: str, playbook_renders) -> None:
    namespaced = [obj for obj in playbook_renders[env] if "namespace" in obj["metadata"]]
    assert namespaced, "the chart sets metadata.namespace on its objects"
    assert {obj["metadata"]["namespace"] for obj in namespaced} == {f"abn-stack-{env}"}
    instances = {obj["metadata"].get("labels", {}).get("app.kubernetes.io/instance") for obj in playbook_renders[env]}
    assert instances - {None} == {RELEASE}


@pytest.mark.parametrize("env", ENVIRONMENTS)
def test_release_references_the_playbook_secret_and_creates_none(env: str, playbook_renders) -> None:
    objects = playbook_renders[env]
    # No Secret with a key the operator owns; dev's log-provider TLS is the chart's own (its CA).
    tls = [TLS_SECRET_NAME] if env == "dev" else []
    assert [obj["metadata"]["name"] for obj in objects if obj["kind"] == "Secret"] == tls
    pods = [obj["spec"]["template"]["spec"] for obj in objects if obj["kind"] in {"Deployment", "StatefulSet"}]
    # File delivery (the default): the Secret's directory mounted, the _FILE variable naming its key.
    volumes = [volume["secret"]["secretName"] for pod in pods for volume in pod.get("volumes", []) if "secret" in volume]
    files = [env_var["value"] for pod in pods for container in pod["containers"] for env_var in container.get("env", [])
             if env_var["name"].endswith("KEY_FILE") and env_var["name"] != "TLS_KEY_FILE"]
    references = [env_var["valueFrom"]["secretKeyRef"] for pod in pods for container in pod["containers"]
                  for env_var in container.get("env", []) if "secretKeyRef" in env_var.get("valueFrom", {})]
    assert volumes, "backend-api reads the integration key from a mounted Secret"
    assert set(volumes) == {SECRET_NAME, *tls} and references == [], (volumes, references)
    assert files and all(path.endswith("/" + SECRET_KEY) for path in files), files


def without_secret_checksum(objects: list[dict[str, Any]]) -> list[dict[str, Any]]:
    trimmed = copy.deepcopy(objects)
    for obj in trimmed:
        if obj["kind"] == "Deployment":
            metadata = obj["spec"]["template"]["metadata"]
            metadata.get("annotations", {}).pop("checksum/secret", None)
            if metadata.get("annotations") == {}:
                del metadata["annotations"]
    return trimmed


def test_dev_overrides_only_move_the_secret_out_of_the_chart(playbook_renders) -> None:
    # dev's values file lets the chart create the Secret; the playbook creates it instead.
    plain = chart_check_render("dev", None)
    chart_secrets = [obj for obj in plain if obj["kind"] == "Secret"]
    assert sorted(s["metadata"]["name"] for s in chart_secrets) == [SECRET_NAME, TLS_SECRET_NAME]

    rest = [obj for obj in plain if obj["kind"] != "Secret" or obj["metadata"]["name"] == TLS_SECRET_NAME]
    assert canonical(without_secret_checksum(playbook_renders["dev"])) == canonical(without_secret_checksum(rest))


def test_prod_render_equals_the_plain_values_file_render(playbook_renders) -> None:
    # prod's values file already names the existing Secret: the overrides change nothing.
    assert canonical(playbook_renders["prod"]) == canonical(chart_check_render("prod", None))


def pod_specs(objects: list[dict[str, Any]]) -> list[tuple[str, dict[str, Any]]]:
    specs = []
    for obj in objects:
        spec = {
            "Deployment": lambda o: o["spec"]["template"]["spec"],
            "StatefulSet": lambda o: o["spec"]["template"]["spec"],
            "CronJob": lambda o: o["spec"]["jobTemplate"]["spec"]["template"]["spec"],
            "Pod": lambda o: o["spec"],
        }.get(obj["kind"])
        if spec:
            specs.append((f"{obj['kind']}/{obj['metadata']['name']}", spec(obj)))
    return specs


@pytest.mark.parametrize("env", ENVIRONMENTS)
def test_every_pod_meets_the_restricted_pod_security_level(env: str, playbook_renders) -> None:
    # The playbook labels the namespace pod-security.kubernetes.io/enforce=restricted; a pod that
    # breaks these container rules would be rejected at admission.
    specs = pod_specs(playbook_renders[env])
    assert {name.split("/")[0] for name, _ in specs} >= {"Deployment", "StatefulSet", "CronJob", "Pod"}
    for name, spec in specs:
        pod_context = spec.get("securityContext", {})
        assert not any("hostPath" in volume for volume in spec.get("volumes", [])), name
        assert not (spec.get("hostNetwork") or spec.get("hostPID") or spec.get("hostIPC")), name
        for container in spec.get("initContainers", []) + spec["containers"]:
            context = container.get("securityContext", {})
            where = f"{name} container {container['name']}"
            assert context.get("runAsNonRoot", pod_context.get("runAsNonRoot")) is True, where
            assert context.get("allowPrivilegeEscalation") is False, where
            assert context.get("privileged", False) is False, where
            assert context.get("capabilities", {}).get("drop") == ["ALL"], where
            assert set(context.get("capabilities", {}).get("add", [])) <= {"NET_BIND_SERVICE"}, where
            seccomp = context.get("seccompProfile") or pod_context.get("seccompProfile") or {}
            assert seccomp.get("type") in {"RuntimeDefault", "Localhost"}, where
            assert context.get("runAsUser", pod_context.get("runAsUser", 1)) != 0, where
