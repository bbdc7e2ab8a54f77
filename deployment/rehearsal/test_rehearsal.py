"""The deploy rehearsal: every rendered pod of every environment, run on the Docker engine as a
kubelet would (kubelet.py), in Helm's order, with the checks a user makes after install
(rehearsal.py). And its own regressions: a values file that makes a container exit, and one that
makes a probe fail, must each fail, naming the pod, the probe and the container's last log lines;
and Secret and ConfigMap volumes get the kubelet's layout, modes and fsGroup ownership.

Needs a Docker engine and the images abn-stack/*:<appVersion> (scripts/check-deploy.sh checks
both and builds the images); each run removes what it created.
"""

from __future__ import annotations

import base64
import http.server
import json
import os
import threading
import time

import docker
import pytest
import requests
import yaml

import extensions
import podspec
import render
import sources
from kubelet import Kubelet, PodFailed
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


def test_health_check_serve_mode_deploys(engine: docker.DockerClient) -> None:
    """healthCheck.mode serve: the Deployment's probes pass, and its page shows every target up
    through the release's Services (rehearsal.user_checks)."""
    result = rehearse(engine, "dev", {"healthCheck": {"mode": "serve"}})
    print("\n" + "\n".join(result.lines()))
    assert any(line.startswith("Deployment/abn-stack-health-check ") and "ready and live" in line
               for line in result.pods), result.pods
    assert not [line for line in result.pods if line.startswith("CronJob/")], result.pods
    assert any(check.startswith("health-check serve:") for check in result.checks), result.checks


def data_api_image() -> dict:
    """data-api's image at IMAGE_TAG (as scripts/build-images.sh), the chart's appVersion by
    default: the shared-mode checks run its probe as the client inside the network."""
    return {"image": {"tag": os.environ.get("IMAGE_TAG") or render_app_version()}}


def test_data_api_shared_mode_deploys_two_replicas_on_one_claim(engine: docker.DockerClient) -> None:
    """persistence.shared: two replicas on one claim; a record acknowledged by either is read back
    through both (rehearsal.user_checks), and through the rollout; and, from a client inside the
    network, a write through the Service name is returned by every read through it, whichever
    replica answers (each answered at least twice), after install and after the rollout."""
    result = rehearse(engine, "dev", {"data-api": {"replicaCount": 2, "persistence": {"shared": {"enabled": True}},
                                                   **data_api_image()}})
    print("\n" + "\n".join(result.lines()))
    ready = [line for line in result.pods if line.startswith("StatefulSet/abn-stack-data-api ") and "ready and live" in line]
    assert len(ready) == 2, result.pods
    assert any(check.startswith("data-api shared claim abn-stack-data-api-shared: ") for check in result.checks), result.checks
    through = [c for c in result.checks if c.startswith("data-api through the Service name http://abn-stack-data-api:5001")]
    assert len(through) == 2, result.checks
    for check in through:
        answered = yaml.safe_load(check.rsplit("answered per replica ", 1)[1])
        assert set(answered) == {"abn-stack-data-api-0", "abn-stack-data-api-1"} and min(answered.values()) >= 2, check


#: Legacy files as the Flask service wrote them: one message line each, one file with three
#: appended lines, an empty one.
LEGACY_FILES = {f"log_{1_700_000_000 + i * 1.25}.txt": [f"legacy message {i}"] for i in range(40)}
LEGACY_FILES["log_1700000100.5.txt"] = ["appended 1", "appended 2", "appended 3"]
LEGACY_FILES["log_1700000101.75.txt"] = []


def test_data_api_legacy_import_as_init_containers(engine: docker.DockerClient) -> None:
    """legacyImport.mode initContainer on the shared claim, two replicas: the Flask service's files
    are on the claim legacyImport.existingClaim names (prepared here before the install, as the old
    volume would be); every data-api pod runs import-legacy before its server, and once ready every
    replica returns every legacy message (GET /logs?instance=legacy). The first pod's import brings
    them in; the second's, and every import of the rollout, import 0."""
    values = {"data-api": {"replicaCount": 2, "persistence": {"shared": {"enabled": True}}, **data_api_image(),
                           "legacyImport": {"enabled": True, "mode": "initContainer", "existingClaim": "flask-logs"}}}
    objects = sources.release_objects("dev", values)
    messages = sorted(m for lines in LEGACY_FILES.values() for m in lines)
    imports: list[str] = []

    def legacy_records(rehearsal: Rehearsal, when: str) -> None:
        pods = [p for p in rehearsal.serving if p.workload.name == "abn-stack-data-api"]
        assert len(pods) == 2, [p.name for p in rehearsal.serving]
        for pod in pods:
            # The summary line (stdout), not the last line: the engine interleaves the container's
            # stdout and its log lines (stderr) in no fixed order.
            lines = pod.logs("import-legacy").splitlines()
            summary = next((line for line in reversed(lines) if line.startswith("import-legacy:")),
                           f"no summary line in {lines[-3:]}")
            imports.append(f"{pod.name} {when}: {summary}")
            answer = requests.get(rehearsal._url(pod, "/logs?instance=legacy&limit=1000"), timeout=30)
            assert answer.status_code == 200, answer.text
            assert sorted(r["message"] for r in answer.json()["records"]) == messages, (pod.name, answer.text[:500])
        rehearsal.result.checks.append(f"legacy import {when}: all {len(messages)} messages on both replicas")

    rehearsal = Rehearsal(objects, source="dev-legacy-init", provider=sources.provider_mode(objects), client=engine,
                          after_rollout=lambda r: legacy_records(r, "after the rollout"))
    original_user_checks = rehearsal.user_checks

    def user_checks() -> None:
        legacy_records(rehearsal, "after install")
        original_user_checks()
    rehearsal.user_checks = user_checks
    # The old volume, before anything starts: files root-owned 0644, as a volume another
    # service wrote (the claim is made here the way the kubelet makes it for the pods).
    volume = engine.volumes.get(rehearsal.kubelet.claim("flask-logs", 65532))
    folder = volume.attrs["Mountpoint"]
    for name, lines in LEGACY_FILES.items():
        with open(os.path.join(folder, name), "w") as file:
            file.write("".join(f"{line}\n" for line in lines))
    result = rehearsal.run()
    print("\n" + "\n".join(result.lines() + imports))
    assert len(imports) == 4, imports
    first, *others = imports
    assert first.startswith("abn-stack-data-api-0 after install") and f"imported {len(messages)} records" in first, imports
    assert all("imported 0 records" in line for line in others), imports
    assert sum(c.startswith("legacy import ") for c in result.checks) == 2, result.checks


class WebhookReceiver:
    """health-check's webhook receiver, on the host at the rehearsal network's gateway address
    (the host as the pods see it); keeps each notification body."""

    def __init__(self, network) -> None:
        network.reload()
        address = network.attrs["IPAM"]["Config"][0]["Gateway"]
        self.bodies: list[dict] = []
        bodies = self.bodies

        class Hook(http.server.BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 (the http.server name)
                bodies.append(json.loads(self.rfile.read(int(self.headers["Content-Length"]))))
                self.send_response(204)
                self.end_headers()

            def log_message(self, *args) -> None:
                pass

        self.server = http.server.ThreadingHTTPServer((address, 0), Hook)
        self.url = f"http://{address}:{self.server.server_address[1]}/hook"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def states(self, target: str) -> list[str]:
        return [b["state"] for b in list(self.bodies) if b["target"] == target]


def test_health_check_alerting_notifies_when_a_target_stops(engine: docker.DockerClient) -> None:
    """healthCheck.alerting in serve mode, probing every second, with a webhook receiver of the
    test whose URL is in the operator's Secret (mounted, named by url_file): the rollout stops
    backend-api (SIGTERM, drain: /readyz 503) and starts it again; the receiver gets exactly one
    down and then one up notification for backend-api. IMAGE_TAG (as scripts/build-images.sh)
    picks the images' tag, the chart's appVersion by default."""
    tag = os.environ.get("IMAGE_TAG") or render_app_version()
    image = {"image": {"tag": tag}}
    values = {"healthCheck": {"mode": "serve", "interval": "1s", **image, "alerting": {
                  "receivers": [{"name": "rehearsal", "type": "webhook", "urlSecret": {"name": "rehearsal-webhook", "key": "url"}}]}},
              "backend-api": image, "data-api": image, "logProvider": image}
    objects = sources.release_objects("dev", values)
    receiver = None

    def notified(rehearsal: Rehearsal) -> None:
        # Every target the rollout stopped, not only backend-api: the last one rolled is ready
        # when the rollout ends, its `up` one probe period later (under load, after this hook).
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and not (
                receiver.states("backend-api") == ["down", "up"]
                and all(receiver.states(b["target"]) == ["down", "up"] for b in list(receiver.bodies))):
            time.sleep(0.2)
        rehearsal.result.checks.append(f"webhook notifications: {[(b['target'], b['state']) for b in receiver.bodies]}")

    rehearsal = Rehearsal(objects, source="dev-alerting", provider=sources.provider_mode(objects), client=engine,
                          after_rollout=notified)
    try:
        # The receiver's address is known once the rehearsal's network exists; the operator's
        # Secret with its URL is made before anything starts, as before an install.
        receiver = WebhookReceiver(rehearsal.kubelet.network)
        rehearsal.cluster.secrets["rehearsal-webhook"] = {"url": receiver.url}
        result = rehearsal.run()
    finally:
        if receiver:
            receiver.server.shutdown()
    print("\n" + "\n".join(result.lines()))
    assert receiver.states("backend-api") == ["down", "up"], receiver.bodies
    down = next(b for b in receiver.bodies if b["target"] == "backend-api")
    assert down["consecutive"] == 2 and down["url"].endswith("/readyz"), down
    # Every target the rollout stopped notified once each way, and nothing else arrived.
    for target in {b["target"] for b in receiver.bodies}:
        assert receiver.states(target) == ["down", "up"], receiver.bodies


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


def _projected_pod(fs_group: int | None) -> list[dict]:
    """A test pod: health-check reads its targets file from a Secret volume (0440) and checks it."""
    targets = "targets:\n  - name: api\n    url: http://127.0.0.1:9/readyz\n"
    security = {"runAsNonRoot": True, "runAsUser": 65532, "runAsGroup": 65532,
                **({"fsGroup": fs_group} if fs_group is not None else {})}
    return [
        {"kind": "Secret", "metadata": {"name": "targets", "namespace": "rehearsal"},
         "data": {"targets.yaml": base64.b64encode(targets.encode()).decode()}},
        {"kind": "ConfigMap", "metadata": {"name": "settings", "namespace": "rehearsal"},
         "data": {"timeout": "3s"}},
        {"kind": "Pod", "metadata": {"name": "projected", "namespace": "rehearsal"}, "spec": {
            "restartPolicy": "Never", "automountServiceAccountToken": False, "enableServiceLinks": False,
            "securityContext": security,
            "volumes": [{"name": "targets", "secret": {"secretName": "targets", "defaultMode": 0o440}},
                        {"name": "settings", "configMap": {"name": "settings"}}],
            "containers": [{
                "name": "health-check", "image": f"abn-stack/health-check:{render_app_version()}",
                "args": ["--once", "--timeout", "$(TIMEOUT)", "--check-config"],
                "env": [{"name": "HEALTHCHECK_CONFIG", "value": "/etc/health/targets/targets.yaml"},
                        {"name": "TIMEOUT", "valueFrom": {"configMapKeyRef": {"name": "settings", "key": "timeout"}}}],
                "securityContext": {"readOnlyRootFilesystem": True, "allowPrivilegeEscalation": False,
                                    "capabilities": {"drop": ["ALL"]}},
                "volumeMounts": [{"name": "targets", "mountPath": "/etc/health/targets", "readOnly": True},
                                 {"name": "settings", "mountPath": "/etc/health/settings", "readOnly": True}],
            }]}},
    ]


def render_app_version() -> str:
    return yaml.safe_load((render.UMBRELLA / "Chart.yaml").read_text())["appVersion"]


def test_secret_volumes_have_the_kubelets_layout_mode_and_group(engine: docker.DockerClient) -> None:
    """0440 files owned root:<fsGroup> behind the ..data link: readable by the pod's user through
    the fsGroup alone, as in Kubernetes; and without an fsGroup, not readable at all."""
    docs = _projected_pod(fs_group=65532)
    kubelet = Kubelet(engine, f"projected-{os.getpid()}", "rehearsal", podspec.Cluster(docs), [])
    try:
        workload = podspec.workloads(docs)[0]
        running = kubelet.run_to_completion(workload)
        assert "configuration ok" in running.logs("health-check"), running.logs("health-check")
        root = kubelet.host_dir / "projected" / "targets"
        assert os.readlink(root / "..data").startswith("..") and os.readlink(root / "targets.yaml") == "..data/targets.yaml"
        stat = os.stat(root / "targets.yaml")
        assert (stat.st_mode & 0o777, stat.st_uid, stat.st_gid) == (0o440, 0, 65532)
    finally:
        kubelet.close()

    docs = _projected_pod(fs_group=None)
    kubelet = Kubelet(engine, f"projected-nogroup-{os.getpid()}", "rehearsal", podspec.Cluster(docs), [])
    try:
        with pytest.raises(PodFailed) as failure:
            kubelet.run_to_completion(podspec.workloads(docs)[0])
        assert "exited with code 2" in str(failure.value) and "HEALTHCHECK_CONFIG" in str(failure.value), failure.value
    finally:
        kubelet.close()


def test_the_extension_points_deploy(engine: docker.DockerClient) -> None:
    """The dev release with deployment/helm/tests/values/extensions.yaml: backend-api by digest
    (the local image's ID), a private CA bundle from a ConfigMap mounted and named by
    SSL_CERT_FILE, HTTPS_PROXY from a Secret, and a status sidecar (health-check serve, by digest
    too) watching it over localhost. backend-api and the sidecar must become ready, and the
    running containers must hold the CA file and the Secret's value."""
    values = extensions.values()
    backend = engine.images.get(f"abn-stack/backend-api:{render_app_version()}")
    health = engine.images.get(f"abn-stack/health-check:{render_app_version()}")
    values["backend-api"]["image"]["digest"] = backend.id
    values["backend-api"]["extraContainers"][0]["image"] = f"abn-stack/health-check@{health.id}"
    objects = sources.release_objects("dev", values)
    pods = {w.name: w.pod_spec for w in podspec.workloads(objects)}
    assert pods["abn-stack-backend-api"]["containers"][0]["image"] == f"abn-stack/backend-api@{backend.id}"
    # The operator's ConfigMap and Secret exist before the install (the config-check Job mounts them).
    result = Rehearsal(objects, source="dev-extensions", provider=sources.provider_mode(objects), client=engine,
                       existing=extensions.operator_objects(sources.NAMESPACES["dev"])).run()
    print("\n" + "\n".join(result.lines()))
    assert any(line.startswith("Deployment/abn-stack-backend-api ") and "ready and live" in line for line in result.pods), result.pods
    delivered = next(c for c in result.checks if c.startswith("delivered to the running containers"))
    for expected in ("backend-api/backend-api SSL_CERT_FILE (file under /etc/ssl/private-ca)",
                     "backend-api/backend-api HTTPS_PROXY (from secret egress-proxy)"):
        assert f"abn-stack-{expected}" in delivered, delivered
    assert any("5 lines" in check for check in result.checks), result.checks


def test_an_image_digest_names_a_local_image_id_of_that_repository(engine: docker.DockerClient) -> None:
    """By digest, the kubelet takes the local image whose ID is the digest and which is tagged as
    the repository named; another repository's ID, or an ID no image has, fails the pod."""
    backend = engine.images.get(f"abn-stack/backend-api:{render_app_version()}")
    kubelet = Kubelet(engine, f"digest-{os.getpid()}", "rehearsal", podspec.Cluster([]), [])
    try:
        assert kubelet.local_image(f"abn-stack/backend-api@{backend.id}").id == backend.id
        for wrong in (f"abn-stack/data-api@{backend.id}", "abn-stack/backend-api@sha256:" + "0" * 64):
            with pytest.raises(PodFailed) as failure:
                kubelet.local_image(wrong)
            assert wrong.split("@")[0] in str(failure.value) or "no local image" in str(failure.value), failure.value
    finally:
        kubelet.close()


def test_an_emptydir_with_a_size_limit_is_the_fsgroups(engine: docker.DockerClient) -> None:
    """An emptyDir with a sizeLimit (a tmpfs here) is root:<fsGroup>, setgid and group-writable, as
    the kubelet gives it: a pod user that only the fsGroup admits (UID/GID 1000, fsGroup 65532)
    writes into it. Before, the tmpfs was root:root 2775 and the write failed. The writer is
    data-api import-legacy with LOG_DIR on the volume: it exits 0 only once LOG_DIR/legacy/ is made."""
    docs = [{"kind": "Pod", "metadata": {"name": "scratch", "namespace": "rehearsal"}, "spec": {
        "restartPolicy": "Never", "automountServiceAccountToken": False, "enableServiceLinks": False,
        "securityContext": {"runAsNonRoot": True, "runAsUser": 1000, "runAsGroup": 1000, "fsGroup": 65532},
        "volumes": [{"name": "scratch", "emptyDir": {"sizeLimit": "16Mi"}}],
        "containers": [{
            "name": "data-api", "image": f"abn-stack/data-api:{data_api_image()['image']['tag']}",
            "args": ["import-legacy", "--from", "/scratch"], "env": [{"name": "LOG_DIR", "value": "/scratch"}],
            "securityContext": {"readOnlyRootFilesystem": True, "allowPrivilegeEscalation": False,
                                "capabilities": {"drop": ["ALL"]}},
            "volumeMounts": [{"name": "scratch", "mountPath": "/scratch"}]}]}}]
    kubelet = Kubelet(engine, f"scratch-{os.getpid()}", "rehearsal", podspec.Cluster(docs), [])
    try:
        running = kubelet.run_to_completion(podspec.workloads(docs)[0])
        assert "import-legacy: 0 files, imported 0 records" in running.logs("data-api"), running.logs("data-api")
    finally:
        kubelet.close()
