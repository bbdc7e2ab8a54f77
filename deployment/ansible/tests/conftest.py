"""Shared paths and helpers for the Ansible deployment tests (run by scripts/check-ansible.sh)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

ANSIBLE_DIR = Path(__file__).resolve().parents[1]
REPO_ROOT = ANSIBLE_DIR.parents[1]
PLAYBOOK = ANSIBLE_DIR / "playbooks" / "app-deploy.yaml"
HELM_SDK = ANSIBLE_DIR / "tools" / "helm-sdk"
FIXTURE_CHARTS = Path(__file__).resolve().parent / "fixtures" / "charts"
# Documented in deployment/ansible/README.md: the committed dev vault is a throwaway example.
DEV_VAULT_PASSWORD = "abn-stack-dev-throwaway"
# Every subprocess gets a bounded time; none of these needs more than a few seconds.
COMMAND_TIMEOUT_SECONDS = 300


def venv_bin(name: str) -> str:
    """A tool of the venv running the tests (the one check-ansible.sh built)."""
    return str(Path(sys.executable).parent / name)


def base_env(**overrides: str) -> dict[str, str]:
    env = dict(os.environ)
    env["PATH"] = f"{Path(sys.executable).parent}:{env.get('PATH', '')}"
    env["ANSIBLE_CONFIG"] = str(ANSIBLE_DIR / "ansible.cfg")
    env["ANSIBLE_NOCOLOR"] = "1"
    env.pop("ABN_STACK_INTEGRATION_KEY", None)
    env.update(overrides)
    return env


def run(cmd: list[str], env: dict[str, str] | None = None, cwd: Path = REPO_ROOT) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        cmd,
        cwd=cwd,
        env=env or base_env(),
        capture_output=True,
        text=True,
        timeout=COMMAND_TIMEOUT_SECONDS,
        check=False,
    )


def run_playbook(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return run([venv_bin("ansible-playbook"), str(PLAYBOOK), *args], env=env)


@pytest.fixture
def dev_vault_password_file(tmp_path: Path) -> Path:
    path = tmp_path / "dev-vault-password"
    path.write_text(DEV_VAULT_PASSWORD + "\n", encoding="utf-8")
    path.chmod(0o600)
    return path
