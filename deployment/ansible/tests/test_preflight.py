"""The playbook's early failures, its integration key sources and the committed dev vault.

These runs stop before (or at) the first task that talks to a cluster: the kubeconfig below
points at a closed loopback port, so nothing leaves the machine.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import yaml

from conftest import (
    ANSIBLE_DIR,
    FIXTURE_CHARTS,
    PLAYBOOK,
    base_env,
    run,
    run_playbook,
    venv_bin,
)

DEV_KEY = "dev-integration-key-not-a-secret"
CI_KEY = "ci-key-from-the-environment-0123456789"


@pytest.fixture
def kubeconfig(tmp_path: Path) -> Path:
    path = tmp_path / "kubeconfig"
    path.write_text(
        yaml.safe_dump(
            {
                "apiVersion": "v1",
                "kind": "Config",
                # Port 1 on loopback: connections are refused at once.
                "clusters": [{"name": "closed", "cluster": {"server": "https://127.0.0.1:1"}}],
                "users": [{"name": "nobody", "user": {"token": "not-a-token"}}],
                "contexts": [{"name": "minikube", "context": {"cluster": "closed", "user": "nobody"}}],
                "current-context": "minikube",
            }
        ),
        encoding="utf-8",
    )
    return path


def fake_helm(directory: Path, plugins: str) -> Path:
    """A stand-in helm for the pre-flight: `version` and `plugin list` only (no cluster here)."""
    path = directory / "helm"
    path.write_text(
        "#!/bin/sh\n"
        'case "$1" in\n'
        "  version) echo v3.19.0 ;;\n"
        f"  plugin) printf 'NAME\\tVERSION\\tDESCRIPTION\\n{plugins}' ;;\n"
        "  *) echo \"fake helm: $1 is not expected in pre-flight\" >&2; exit 3 ;;\n"
        "esac\n",
        encoding="utf-8",
    )
    path.chmod(0o755)
    return path


@pytest.fixture
def fixture_chart_vars(tmp_path: Path) -> list[str]:
    """Point the play at the fixture chart and a helm with helm-diff, independent of the real chart."""
    values = tmp_path / "values.yaml"
    values.write_text("greeting: preflight\n", encoding="utf-8")
    helm = fake_helm(tmp_path, "diff\\t3.9.14\\tPreview helm upgrade changes as a diff\\n")
    return [
        "-e",
        f"chart_path={FIXTURE_CHARTS / 'demo'}",
        "-e",
        f'{{"values_files": ["{values}"]}}',
        "-e",
        f"helm_binary={helm}",
    ]


def output(result) -> str:
    return result.stdout + result.stderr


@pytest.mark.parametrize("extra", [["-e", "app_env=staging"], []], ids=["unknown", "missing"])
def test_unknown_or_missing_app_env_fails_first(extra: list[str]) -> None:
    result = run_playbook(*extra)

    assert result.returncode != 0
    assert "app_env must be one of dev, prod" in output(result)
    assert "Load the environment's settings" not in result.stdout


def test_kube_context_missing_from_kubeconfig_fails_before_any_cluster_task(
    kubeconfig: Path, fixture_chart_vars: list[str]
) -> None:
    result = run_playbook(
        "-e", "app_env=prod", *fixture_chart_vars, env=base_env(KUBECONFIG=str(kubeconfig))
    )

    assert result.returncode != 0
    assert "kube context abn-stack-prod is not in" in result.stdout
    assert "known: minikube" in result.stdout
    assert "Create the namespace" not in result.stdout


def test_missing_helm_diff_plugin_fails_before_any_cluster_task(
    kubeconfig: Path, fixture_chart_vars: list[str], tmp_path: Path
) -> None:
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    no_plugins = fake_helm(bin_dir, "")

    result = run_playbook(
        "-e", "app_env=dev", *fixture_chart_vars, "-e", f"helm_binary={no_plugins}",
        env=base_env(KUBECONFIG=str(kubeconfig)),
    )

    assert result.returncode != 0
    assert "the helm-diff plugin is missing" in result.stdout
    assert "Create the namespace" not in result.stdout


def test_missing_integration_key_fails_before_any_cluster_task(
    kubeconfig: Path, fixture_chart_vars: list[str], tmp_path: Path
) -> None:
    result = run_playbook(
        "-e", "app_env=dev",
        "-e", f"integration_key_vault_file={tmp_path / 'absent.yaml'}",
        *fixture_chart_vars,
        env=base_env(KUBECONFIG=str(kubeconfig)),
    )

    assert result.returncode != 0
    assert "no integration key for dev: set ABN_STACK_INTEGRATION_KEY" in result.stdout
    assert "Create the namespace" not in result.stdout


def test_vault_without_the_right_password_fails_with_a_readable_message(
    kubeconfig: Path, fixture_chart_vars: list[str], tmp_path: Path
) -> None:
    wrong = tmp_path / "wrong-password"
    wrong.write_text("not-the-password\n", encoding="utf-8")

    result = run_playbook(
        "-e", "app_env=dev", *fixture_chart_vars, "--vault-id", f"dev@{wrong}",
        env=base_env(KUBECONFIG=str(kubeconfig)),
    )

    assert result.returncode != 0
    assert "cannot decrypt" in result.stdout
    assert "pass --vault-id dev@<password file>" in result.stdout
    assert "TASK [Create the namespace]" not in result.stdout


@pytest.mark.parametrize("source", ["vault", "environment"])
def test_key_sources_pass_preflight_without_printing_the_key(
    source: str, kubeconfig: Path, fixture_chart_vars: list[str], dev_vault_password_file: Path
) -> None:
    env = base_env(KUBECONFIG=str(kubeconfig))
    args = ["-e", "app_env=dev", "-vvv", *fixture_chart_vars, "--vault-id", f"dev@{dev_vault_password_file}"]
    if source == "environment":
        env["ABN_STACK_INTEGRATION_KEY"] = CI_KEY

    result = run_playbook(*args, env=env)

    # Pre-flight passed; the first cluster task fails on the closed port.
    assert result.returncode != 0
    assert "TASK [Fail when no integration key is available]" in result.stdout
    assert "TASK [Create the namespace]" in result.stdout
    assert "no integration key for dev" not in result.stdout
    assert DEV_KEY not in output(result)
    assert CI_KEY not in output(result)


def test_every_task_that_handles_the_key_has_no_log() -> None:
    play = yaml.safe_load(PLAYBOOK.read_text(encoding="utf-8"))[0]
    tasks = [task for block in play["tasks"] for task in block.get("block", [block])]
    key_reference = re.compile(r"(?<!\w)(vault_)?integration_key\b")

    def handles_key(task: dict) -> bool:
        # Jinja expressions in what the task does (its `when` only tests the key's length).
        arguments = {k: v for k, v in task.items() if k not in {"name", "when"}}
        expressions = re.findall(r"{{.*?}}", yaml.safe_dump(arguments, width=10_000), flags=re.DOTALL)
        loads_vault = "integration_key_vault_file" in str(task.get("ansible.builtin.include_vars"))
        return loads_vault or any(key_reference.search(expression) for expression in expressions)

    handling = [task["name"] for task in tasks if handles_key(task)]
    assert handling == [
        "Load the environment's vault file when there is one",
        "Choose the integration key (environment variable first, then the vault)",
        "Create the integration key Secret",
    ]
    for task in tasks:
        if task["name"] in handling:
            assert task.get("no_log") is True, task["name"]


def test_committed_dev_vault_opens_with_the_documented_password(dev_vault_password_file: Path) -> None:
    vault = ANSIBLE_DIR / "vault" / "dev.yaml"
    assert vault.read_text(encoding="utf-8").startswith("$ANSIBLE_VAULT;1.2;AES256;dev\n")

    result = run(
        [venv_bin("ansible-vault"), "view", "--vault-id", f"dev@{dev_vault_password_file}", str(vault)]
    )

    assert result.returncode == 0, result.stderr
    assert yaml.safe_load(result.stdout) == {"vault_integration_key": DEV_KEY}


def test_no_plaintext_vault_file_is_committed() -> None:
    for path in sorted((ANSIBLE_DIR / "vault").iterdir()):
        if path.suffix in {".yaml", ".yml"}:
            assert path.read_text(encoding="utf-8").startswith("$ANSIBLE_VAULT;"), path
