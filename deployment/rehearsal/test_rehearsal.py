"""The deploy rehearsal: every rendered pod of every environment, run on the Docker engine as a
kubelet would (kubelet.py), in Helm's order, with the checks a user makes after install
(rehearsal.py). And its own regressions: a values file that makes a container exit, and one that
makes a probe fail, must each fail, naming the pod, the probe and the container's last log lines.

Needs a Docker engine and the images abn-stack/*:<appVersion> (scripts/check-deploy.sh checks
both and builds the images); each run removes what it created.
"""

from __future__ import annotations

import docker
import pytest

import render
import sources
from kubelet import PodFailed
from rehearsal import Rehearsal

#: The timeout pair the charts once rendered: backend-api refuses to start on it.
OLD_TIMEOUTS = {"backend-api": {"config": {"requestTimeout": "30s", "externalLogsTimeout": "30s"}}}


@pytest.fixture(scope="session")
def engine() -> docker.DockerClient:
    render.build_dependencies(render.UMBRELLA)
    return docker.from_env()


def rehearse(engine: docker.DockerClient, source: str, extra: dict | None = None):
    objects = sources.release_objects(source, extra)
    return Rehearsal(objects, source=source, provider=sources.provider_mode(objects), client=engine).run()


@pytest.mark.parametrize("source", sources.SOURCES)
def test_the_release_deploys(engine: docker.DockerClient, source: str) -> None:
    result = rehearse(engine, source)
    print("\n" + "\n".join(result.lines()))
    kinds = {line.split("/")[0] for line in result.pods}
    assert {"Deployment", "StatefulSet", "CronJob", "Job", "Pod"} <= kinds, result.pods
    hooks = [line for line in result.pods if "pre-install hook exited 0" in line]
    assert any("backend-api-config-check" in line for line in hooks), hooks
    assert any("SIGTERM: exit 0" in line for line in result.pods), result.pods


def test_the_config_check_hook_stops_a_bad_value_before_any_pod(engine: docker.DockerClient) -> None:
    with pytest.raises(PodFailed) as failure:
        rehearse(engine, "dev", OLD_TIMEOUTS)
    message = str(failure.value)
    print(message)
    assert "Job/abn-stack-backend-api-config-check" in message, message
    assert "exited with code 2" in message and "EXTERNAL_LOGS_TIMEOUT" in message, message
    assert "last log lines of backend-api" in message, message


def test_a_container_that_exits_fails_naming_pod_probe_and_logs(engine: docker.DockerClient) -> None:
    # Without the hook, the Deployment's own pod meets the bad value, as it did before the hook.
    with pytest.raises(PodFailed) as failure:
        rehearse(engine, "dev", {**OLD_TIMEOUTS, "configCheck": {"enabled": False}})
    message = str(failure.value)
    print(message)
    assert "Deployment/abn-stack-backend-api pod abn-stack-backend-api-" in message, message
    assert "container exited with code 2" in message and "EXTERNAL_LOGS_TIMEOUT" in message, message


def test_a_probe_on_the_wrong_port_fails_naming_pod_probe_and_logs(engine: docker.DockerClient) -> None:
    with pytest.raises(PodFailed) as failure:
        rehearse(engine, "dev", {"backend-api": {"probes": {"readiness": {"port": 5999}}}})
    message = str(failure.value)
    print(message)
    assert "Deployment/abn-stack-backend-api pod abn-stack-backend-api-" in message, message
    assert "readinessProbe failed 2 times in a row" in message and "5999" in message, message
    assert "last log lines of backend-api" in message and "listening" in message, message
