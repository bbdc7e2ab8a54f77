"""When the rehearsal's Secrets and ConfigMaps exist, as Helm creates them (rehearsal.py hooks() and
install(), upgrade.py apply()): a hook Secret from its turn in its phase (by weight, then name),
so a config-check Job of a later weight mounts it; a release resource only at install, none
during the pre-install hooks; a hook resource kept after its phase unless its delete policy says
hook-succeeded, and kept through an upgrade and a rollback to a revision without it; a release
resource the next revision no longer has deleted. Over the real dev render, with a kubelet that
records what each hook Job would find instead of starting containers: no Docker engine needed."""

from __future__ import annotations

import base64
import copy
import types
from typing import Any

import pytest

import podspec
import rehearsal
import render
import sources
import upgrade

TLS = "abn-stack-log-provider-tls"
KEY = "abn-stack-integration-key"
#: A release resource (no hook annotation) only the base revision has.
ONLY_IN_BASE = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "only-in-base", "namespace": "abn-stack-dev"},
                "data": {"a": "1"}}
#: A hook Secret deleted once its phase succeeded.
SCRATCH = {"apiVersion": "v1", "kind": "Secret",
           "metadata": {"name": "scratch-hook", "namespace": "abn-stack-dev", "annotations": {
               "helm.sh/hook": "pre-install,pre-upgrade", "helm.sh/hook-weight": "-5",
               "helm.sh/hook-delete-policy": "before-hook-creation,hook-succeeded"}},
           "data": {"x": base64.b64encode(b"y").decode()}}


class RecordingKubelet:
    """Stands in for kubelet.Kubelet: what each run would find in the namespace, and the pods."""

    def __init__(self, client: Any, run_id: str, namespace: str, cluster: podspec.Cluster, services: list, log: Any = print):
        self.cluster = cluster
        self.runs: list[tuple[str, dict[str, dict[str, str]], set[str]]] = []
        self.services = services

    def run_to_completion(self, workload: podspec.Workload) -> Any:
        self.runs.append((workload.name, copy.deepcopy(self.cluster.secrets), set(self.cluster.config_maps)))
        return types.SimpleNamespace(workload=workload, name=workload.name)

    def start(self, workload: podspec.Workload, pod: str) -> Any:
        return types.SimpleNamespace(workload=workload, name=pod)

    def wait_ready(self, running: Any) -> None:
        pass

    def stop(self, running: Any) -> float:
        return 0.0

    def remove(self, running: Any) -> None:
        pass

    def sync(self, kind: str, name: str) -> list:
        return []

    def close(self) -> None:
        pass


@pytest.fixture
def renders(monkeypatch: pytest.MonkeyPatch) -> tuple[list[dict], list[dict]]:
    monkeypatch.setattr(rehearsal, "Kubelet", RecordingKubelet)
    render.build_dependencies(render.UMBRELLA)
    # Two renders: each offline render makes a new CA (no cluster for lookup), like a base and a
    # working tree rendered apart.
    return sources.release_objects("dev") + [ONLY_IN_BASE, SCRATCH], sources.release_objects("dev")


def tls_data(objects: list[dict]) -> dict[str, str]:
    secret = next(o for o in objects if o["kind"] == "Secret" and o["metadata"]["name"] == TLS)
    return {k: base64.b64decode(v).decode() for k, v in secret["data"].items()}


def test_hook_secrets_exist_from_their_turn_and_release_objects_from_the_install(renders) -> None:
    base, head = renders
    release = rehearsal.Rehearsal(base, source="hooks", provider=sources.provider_mode(base), client=object(), log=lambda _: None)
    # Before Helm runs, nothing of the render exists.
    assert TLS not in release.cluster.secrets and KEY not in release.cluster.secrets
    order = [f"{o['kind']}/{o['metadata']['name']}" for o in release.hook_objects("pre-install")]
    assert order[:3] == [f"Secret/{KEY}", f"Secret/{TLS}", "Secret/scratch-hook"], order
    jobs = order[3:]
    assert jobs == sorted(jobs) and all(j.startswith("Job/") for j in jobs), order

    release.hooks("pre-install")
    runs = release.kubelet.runs
    assert [name for name, _, _ in runs] == [j.split("/", 1)[1] for j in jobs]
    for name, secrets, config_maps in runs:
        # Every hook Secret of a lower weight, with the render's data; no release resource yet.
        assert secrets[TLS] == tls_data(base) and KEY in secrets and "scratch-hook" in secrets, name
        assert "-----BEGIN CERTIFICATE-----" in secrets[TLS]["ca.crt"], name
        assert "only-in-base" not in config_maps, name
    # After the phase: before-hook-creation keeps, hook-succeeded deletes.
    assert TLS in release.cluster.secrets and KEY in release.cluster.secrets
    assert "scratch-hook" not in release.cluster.secrets
    assert any(c == f"Secret/{TLS}: pre-install hook created (weight -10), kept (before-hook-creation)"
               for c in release.result.checks), release.result.checks

    release.install()
    assert release.cluster.config_maps["only-in-base"] == {"a": "1"}
    assert {p.workload.name for p in release.serving} >= {"abn-stack-backend-api", "abn-stack-log-provider"}


def test_an_upgrade_recreates_its_hook_secrets_first_and_a_rollback_keeps_them(renders) -> None:
    base, head = renders
    release = rehearsal.Rehearsal(base, source="hooks", provider=sources.provider_mode(base), client=object(), log=lambda _: None)
    release.hooks("pre-install")
    release.install()
    steps = upgrade.Upgrade(base, head, client=object(), log=lambda _: None)  # type: ignore[arg-type]

    upgraded = steps.apply(release, head, "pre-upgrade", "upgrade")
    assert upgraded.cluster is release.cluster
    runs = upgraded.kubelet.runs[len([o for o in base if o["kind"] == "Job"]):]
    assert runs and all(name.endswith("-config-check") for name, _, _ in runs)
    for name, secrets, config_maps in runs:
        # The new revision's hook Secret replaced the old one before its Jobs (the head render's
        # data: an offline render cannot reuse through lookup; test_render proves that a
        # cluster-aware render does); the base's release ConfigMap still there until the apply.
        assert secrets[TLS] == tls_data(head) != tls_data(base), name
        assert "only-in-base" in config_maps, name
    assert "only-in-base" not in upgraded.cluster.config_maps
    ran = next(line for line in steps.lines if "pre-upgrade hooks ran:" in line)
    assert f"Secret/{TLS}" in ran and "Job/abn-stack-backend-api-config-check" in ran, ran

    # Back to a revision that has no TLS Secret (as 0.1.0): the hook resource stays.
    without_tls = [o for o in base if o["metadata"]["name"] != TLS]
    rolled = steps.apply(upgraded, without_tls, "pre-rollback", "rollback")
    assert rolled.cluster.secrets[TLS] == tls_data(head)
    assert rolled.cluster.config_maps["only-in-base"] == {"a": "1"}
    assert any("pre-rollback hooks ran: none" in line for line in steps.lines), steps.lines
