"""The charts against the binaries: every container a render would start (workloads, hook Jobs,
the CronJob's run, the `helm test` pod) gets exactly its environment and arguments, as a kubelet
would build them, handed to the real binary's --check-config. A value the binary refuses at start
fails here, naming the pod, even on a machine without a Docker engine.

The binaries come from ABN_BIN_DIR (default target/debug; scripts/check-charts.sh builds them).
The image's own ENV is read from the Dockerfile stage of the same name (binaries.py), so what the
image sets counts as it would in the container.
"""

from __future__ import annotations

import subprocess
import tempfile
from pathlib import Path

import pytest

import binaries
import extensions
import podspec
from conftest import ENVS, NAMESPACES, objects

#: The timeout pair the charts once rendered: backend-api refuses to start on it.
OLD_TIMEOUTS = {"backend-api": {"config": {"requestTimeout": "30s", "externalLogsTimeout": "30s"}}}


def check_release(docs: list[dict]) -> tuple[list[str], list[str]]:
    """Runs --check-config for every container of every pod; returns (passed, failed), each entry
    'pod <name> container <name>: <what the binary printed>'."""
    cluster = podspec.Cluster(docs, podspec.operator_secrets(docs))
    passed, failed = [], []
    for workload in podspec.workloads(docs):
        pod_name = workload.pod_names()[0]
        for container in workload.pod_spec.get("initContainers", []) + workload.pod_spec["containers"]:
            name = binaries.name_of(container["image"])
            env = podspec.container_env(container, pod_name=pod_name, namespace=workload.namespace,
                                        cluster=cluster, base=binaries.image_env(name))
            where = f"{workload.kind}/{workload.name}"
            scratch = tempfile.TemporaryDirectory(prefix="abn-mounts-")
            env = with_mounts(env, podspec.projected_files(workload.pod_spec, container, cluster, where),
                              Path(scratch.name))
            argv = podspec.container_argv(container, env, [f"/usr/local/bin/{name}"])
            assert argv[0] == f"/usr/local/bin/{name}", f"{workload.name}: unexpected command {argv}"
            # The hook Jobs are the check already; every other container gets the flag added.
            args = argv[1:] if "--check-config" in argv else [*argv[1:], "--check-config"]
            result = subprocess.run([str(binaries.binary(name)), *args], env=env,
                                    capture_output=True, text=True, timeout=30)
            scratch.cleanup()
            line = (result.stderr + result.stdout).strip()
            entry = f"{workload.kind} {workload.name} pod {pod_name} container {container['name']}: {line}"
            (passed if result.returncode == 0 and line == "configuration ok" else failed).append(entry)
    return passed, failed


def with_mounts(env: dict[str, str], files: dict[str, dict[str, str]], scratch: Path) -> dict[str, str]:
    """Writes the container's Secret and ConfigMap files under `scratch` and points the variables
    that name a file under a mount there, so the binary on the host reads what the pod would."""
    moved = {}
    for number, (mount_path, contents) in enumerate(files.items()):
        folder = scratch / str(number)
        folder.mkdir()
        for path, content in contents.items():
            (folder / path).parent.mkdir(parents=True, exist_ok=True)
            (folder / path).write_text(content)
        moved[mount_path.rstrip("/") + "/"] = str(folder) + "/"
    return {name: next((value.replace(m, h, 1) for m, h in moved.items() if value.startswith(m)), value)
            for name, value in env.items()}


@pytest.mark.parametrize("env", ENVS)
def test_every_rendered_container_passes_its_binarys_check(env: str) -> None:
    passed, failed = check_release(objects(env))
    assert not failed, "\n".join(failed)
    # Every workload of the release was checked, hooks and the test pod included.
    kinds = {entry.split()[0] for entry in passed}
    assert {"Deployment", "StatefulSet", "CronJob", "Job", "Pod"} <= kinds, passed


@pytest.mark.parametrize("env", ENVS)
def test_the_old_timeout_pair_fails_naming_backend_api_and_the_variable(env: str) -> None:
    passed, failed = check_release(objects(env, extra=OLD_TIMEOUTS))
    assert failed, "the old timeout pair passed the check"
    for entry in failed:
        assert "backend-api" in entry and "EXTERNAL_LOGS_TIMEOUT" in entry, entry
    # The Deployment and its pre-install check both fail; nothing else does.
    assert {e.split()[0] for e in failed} == {"Deployment", "Job"}, failed


def test_stand_in_secrets_cover_what_prod_references() -> None:
    docs = objects("prod")
    assert set(podspec.operator_secrets(docs)) == {"abn-stack-integration-key"}
    assert NAMESPACES["prod"] == {w.namespace for w in podspec.workloads(docs)}.pop()


def test_the_extension_points_pass_every_binarys_check() -> None:
    """values/extensions.yaml: backend-api with SSL_CERT_FILE naming the operator's CA bundle,
    HTTPS_PROXY from the operator's Secret, and the health-check status sidecar: every container,
    the sidecar and the hook Jobs included, passes its binary's --check-config."""
    docs = objects("dev", extra=extensions.values()) + extensions.operator_objects(NAMESPACES["dev"])
    passed, failed = check_release(docs)
    assert not failed, "\n".join(failed)
    assert any(" container status: configuration ok" in entry for entry in passed), passed
