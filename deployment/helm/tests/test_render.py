"""Assertions over the rendered manifests of the umbrella chart (default, dev and prod values)."""

from __future__ import annotations

import base64
import http.server
import json
import re
import shutil
import subprocess
import threading
from typing import Any, Iterator
from urllib.parse import urlsplit

import helm_python as helm
import pytest
import yaml

import binaries
import podspec
import render
from conftest import ENVS, NAMESPACES, objects, rendered

WORKLOAD_KINDS = {"Deployment", "StatefulSet", "DaemonSet"}
# Every variable a chart may set, from the team's interface agreement (plus the CronJob's flags).
KNOWN_ENV = {
    "LISTEN_ADDR", "DRAIN_PERIOD", "SHUTDOWN_TIMEOUT", "REQUEST_TIMEOUT", "HEADER_READ_TIMEOUT",
    "MAX_BODY_BYTES", "MAX_HEADER_BYTES", "MAX_CONNECTIONS", "LOG_FORMAT", "RUST_LOG",
    "SIMULATED_LATENCY_MS", "EXTERNAL_LOGS_URL", "EXTERNAL_INTEGRATION_KEY",
    "EXTERNAL_INTEGRATION_KEY_FILE", "PROVIDER_KEY_FILE", "API_TOKENS_FILE", "DOWNLOAD_RATE_LIMIT",
    "EXTERNAL_LOGS_CONNECT_TIMEOUT", "EXTERNAL_LOGS_TIMEOUT", "EXTERNAL_LOGS_RETRIES",
    "EXTERNAL_LOGS_STREAM_TIMEOUT", "EXTERNAL_LOGS_READ_IDLE_TIMEOUT", "EXTERNAL_LOGS_ALLOW_PLAINTEXT",
    "PROVIDER_KEY", "LOG_DIR", "INSTANCE_ID", "LOG_SEGMENT_BYTES", "LOG_RETENTION_BYTES",
    "LOG_ORPHAN_RETENTION", "LOG_SHARED_RETENTION_BYTES", "LOG_ORPHAN_SWEEP_INTERVAL",
    # health-check's history rotation (crates/health-check/src/cli.rs).
    "HEALTHCHECK_OUTPUT_MAX_BYTES", "HEALTHCHECK_OUTPUT_KEEP_FILES",
    # healthCheck.alerting: the file with the alerting section.
    "HEALTHCHECK_CONFIG",
    # TLS on the provider path: log-provider's certificate, backend-api's private CA, and the
    # health-check's trust of the dev provider's CA (rustls-native-certs reads SSL_CERT_FILE).
    "TLS_CERT_FILE", "TLS_KEY_FILE", "EXTERNAL_LOGS_CA_FILE", "SSL_CERT_FILE",
    # global.otel (test_otel.py): the OTLP exporter, its sampler, and the resource attributes with
    # the two downward-API variables they are expanded from.
    "OTEL_EXPORTER_OTLP_ENDPOINT", "OTEL_TRACES_SAMPLER", "OTEL_TRACES_SAMPLER_ARG",
    "OTEL_RESOURCE_ATTRIBUTES", "OTEL_K8S_POD_NAME", "OTEL_K8S_NAMESPACE_NAME",
}


def by_kind(docs: list[dict[str, Any]], kind: str) -> list[dict[str, Any]]:
    return [d for d in docs if d["kind"] == kind]


def one(docs: list[dict[str, Any]], kind: str, name: str) -> dict[str, Any]:
    found = [d for d in docs if d["kind"] == kind and d["metadata"]["name"] == name]
    assert len(found) == 1, f"{kind}/{name}: {len(found)} found"
    return found[0]


def pod_specs(docs: list[dict[str, Any]]) -> Iterator[tuple[str, dict[str, Any]]]:
    """(object id, pod spec) of every object that runs containers."""
    for doc in docs:
        kind, name = doc["kind"], doc["metadata"]["name"]
        if kind in WORKLOAD_KINDS or kind == "Job":
            yield f"{kind}/{name}", doc["spec"]["template"]["spec"]
        elif kind == "CronJob":
            yield f"{kind}/{name}", doc["spec"]["jobTemplate"]["spec"]["template"]["spec"]
        elif kind == "Pod":
            yield f"{kind}/{name}", doc["spec"]


def running_env(docs: list[dict[str, Any]], kind: str, name: str) -> dict[str, str]:
    """The first container's environment as it runs: the image's ENV, then the pod's env (Secrets
    the operator makes stand in with generated values)."""
    workload = next(w for w in podspec.workloads(docs) if w.kind == kind and w.name == name)
    container = workload.pod_spec["containers"][0]
    cluster = podspec.Cluster(docs, podspec.operator_secrets(docs))
    return podspec.container_env(container, pod_name=workload.pod_names()[0], namespace=workload.namespace,
                                 cluster=cluster, base=binaries.image_env(binaries.name_of(container["image"])))


def setting(docs: list[dict[str, Any]], kind: str, name: str, variable: str) -> str:
    """A variable's value in the running container, or the binary's declared default."""
    workload = next(w for w in podspec.workloads(docs) if w.kind == kind and w.name == name)
    binary = binaries.name_of(workload.pod_spec["containers"][0]["image"])
    return binaries.effective(binary, running_env(docs, kind, name), variable)


def seconds(duration: str) -> float:
    units = {"ms": 0.001, "s": 1, "m": 60, "h": 3600}
    number, unit = re.fullmatch(r"(\d+)(ms|s|m|h)", duration).groups()
    return int(number) * units[unit]


def size_bytes(size: str) -> int:
    units = {"": 1, "B": 1, "KiB": 2**10, "MiB": 2**20, "GiB": 2**30}
    number, unit = re.fullmatch(r"(\d+)\s*([KMG]iB|B)?", size).groups()
    return int(number) * units[unit or ""]


def health_check_targets(args: list[str]) -> dict[str, str]:
    targets = {}
    for flag, value in zip(args, args[1:]):
        if flag == "--target":
            name, url = value.split("=", 1)
            targets[name] = url
    return targets


def render_error(env: str, values_yaml: str, tmp_path) -> str:
    """Render with one more values file on top of the environment's; return the schema error."""
    extra = tmp_path / "extra.yaml"
    extra.write_text(values_yaml)
    files = ([] if env == "default" else [render.env_values_file(env)]) + [extra]
    with pytest.raises(helm.HelmValuesError) as caught:
        render.render(render.UMBRELLA, files, namespace=NAMESPACES[env])
    return str(caught.value)


# --- environments -------------------------------------------------------------------------------


def test_prod_creates_no_secret_and_no_log_provider() -> None:
    docs = objects("prod")
    assert by_kind(docs, "Secret") == []
    assert not [d for d in docs if "log-provider" in d["metadata"]["name"]]
    assert_key_from_mounted_secret(one(docs, "Deployment", "abn-stack-backend-api"), "EXTERNAL_INTEGRATION_KEY")


KEY_DIR = "/var/run/secrets/abn-stack/integration-key"


def assert_key_from_mounted_secret(workload: dict[str, Any], variable: str) -> None:
    """File delivery: the Secret's whole directory read-only (no subPath, which the kubelet never
    updates), 0440 under the pod's fsGroup, the _FILE variable naming the key, and the key itself
    nowhere in the environment."""
    pod = workload["spec"]["template"]["spec"]
    container = pod["containers"][0]
    env = {e["name"]: e for e in container["env"]}
    assert variable not in env
    assert env[f"{variable}_FILE"]["value"] == f"{KEY_DIR}/integration-key"
    mount = next(m for m in container["volumeMounts"] if m["mountPath"] == KEY_DIR)
    assert mount["readOnly"] is True and "subPath" not in mount and "subPathExpr" not in mount
    volume = next(v for v in pod["volumes"] if v["name"] == mount["name"])
    assert volume["secret"] == {"secretName": "abn-stack-integration-key", "defaultMode": 0o440}
    assert pod["securityContext"]["fsGroup"] == 65532


def test_caller_tokens_come_from_a_mounted_secret() -> None:
    """apiTokensSecretName: its directory mounted read-only like the key, API_TOKENS_FILE naming
    the tokens' file; downloadRateLimit renders DOWNLOAD_RATE_LIMIT."""
    docs = objects("prod", extra={"backend-api": {"apiTokensSecretName": "callers", "config": {"downloadRateLimit": 30}}})
    pod = one(docs, "Deployment", "abn-stack-backend-api")["spec"]["template"]["spec"]
    env = {e["name"]: e.get("value") for e in pod["containers"][0]["env"]}
    assert env["API_TOKENS_FILE"] == "/var/run/secrets/abn-stack/api-tokens/api-tokens"
    assert env["DOWNLOAD_RATE_LIMIT"] == "30"
    mount = next(m for m in pod["containers"][0]["volumeMounts"] if m["name"] == "api-tokens")
    assert mount == {"name": "api-tokens", "mountPath": "/var/run/secrets/abn-stack/api-tokens", "readOnly": True}
    volume = next(v for v in pod["volumes"] if v["name"] == "api-tokens")
    assert volume["secret"] == {"secretName": "callers", "defaultMode": 0o440}


def test_data_api_caller_tokens_come_from_a_mounted_secret() -> None:
    """data-api's apiTokensSecretName: the directory mounted read-only beside the data volume,
    API_TOKENS_FILE naming the file, and the config-check Job mounting the same Secret (the check
    reads the file); unset, no token volume."""
    docs = objects("prod", extra={"data-api": {"apiTokensSecretName": "callers"}})
    pod = one(docs, "StatefulSet", "abn-stack-data-api")["spec"]["template"]["spec"]
    container = pod["containers"][0]
    env = {e["name"]: e.get("value") for e in container["env"]}
    assert env["API_TOKENS_FILE"] == "/var/run/secrets/abn-stack/api-tokens/api-tokens"
    mounts = {m["name"]: m for m in container["volumeMounts"]}
    assert mounts["api-tokens"] == {"name": "api-tokens", "mountPath": "/var/run/secrets/abn-stack/api-tokens", "readOnly": True}
    assert mounts["data"]["mountPath"] == "/var/data/logs"
    volume = next(v for v in pod["volumes"] if v["name"] == "api-tokens")
    assert volume["secret"] == {"secretName": "callers", "defaultMode": 0o440}
    job = one(docs, "Job", "abn-stack-data-api-config-check")["spec"]["template"]["spec"]
    # The check mounts the tokens as the pods do, beside its scratch stand-in for the records volume.
    assert {m["name"] for m in job["containers"][0]["volumeMounts"]} == {"api-tokens", "data"}
    assert next(v for v in job["volumes"] if v["name"] == "data") == {"name": "data", "emptyDir": {"sizeLimit": "16Mi"}}
    assert next(v for v in job["volumes"] if v["name"] == "api-tokens")["secret"]["secretName"] == "callers"
    plain = one(objects("prod"), "StatefulSet", "abn-stack-data-api")["spec"]["template"]["spec"]
    assert "API_TOKENS_FILE" not in {e["name"] for e in plain["containers"][0]["env"]}
    assert all(v["name"] != "api-tokens" for v in plain.get("volumes", []))


def test_env_delivery_is_an_opt_in_that_rolls_the_pods() -> None:
    """integrationKeyDelivery env: the key from the environment, no key volume, and the chart-made
    Secret's checksum on the pod template; file delivery has no such annotation (no rollout)."""
    env_mode = {"backend-api": {"integrationKeyDelivery": "env"}}
    docs = objects("dev", extra=env_mode)
    for name, variable in (("abn-stack-backend-api", "EXTERNAL_INTEGRATION_KEY"), ("abn-stack-log-provider", "PROVIDER_KEY")):
        template = one(docs, "Deployment", name)["spec"]["template"]
        env = {e["name"]: e for e in template["spec"]["containers"][0]["env"]}
        assert env[variable]["valueFrom"]["secretKeyRef"] == {"name": "abn-stack-integration-key", "key": "integration-key"}
        assert pod_secret_items(template["spec"], "abn-stack-integration-key") == [], name
    annotations = one(docs, "Deployment", "abn-stack-backend-api")["spec"]["template"]["metadata"]["annotations"]
    assert "checksum/secret" in annotations
    file_mode = one(objects("dev"), "Deployment", "abn-stack-backend-api")["spec"]["template"]["metadata"]
    assert "checksum/secret" not in file_mode.get("annotations", {})


def test_dev_runs_the_log_provider_with_the_chart_made_secret() -> None:
    docs = objects("dev")
    secret = one(docs, "Secret", "abn-stack-integration-key")
    assert base64.b64decode(secret["data"]["integration-key"])
    assert_key_from_mounted_secret(one(docs, "Deployment", "abn-stack-log-provider"), "PROVIDER_KEY")
    assert_key_from_mounted_secret(one(docs, "Deployment", "abn-stack-backend-api"), "EXTERNAL_INTEGRATION_KEY")
    # The backend calls its own release's provider Service.
    url = urlsplit(running_env(docs, "Deployment", "abn-stack-backend-api")["EXTERNAL_LOGS_URL"])
    service_name, namespace = url.hostname.split(".")[:2]
    service = one(docs, "Service", service_name)
    assert namespace == NAMESPACES["dev"]
    assert url.port == service["spec"]["ports"][0]["port"] and url.path == "/v1/logs"


def test_dev_is_one_replica_and_prod_is_highly_available() -> None:
    dev, prod = objects("dev"), objects("prod")
    assert one(dev, "Deployment", "abn-stack-backend-api")["spec"]["replicas"] == 1
    assert one(dev, "StatefulSet", "abn-stack-data-api")["spec"]["replicas"] == 1
    hpa = one(prod, "HorizontalPodAutoscaler", "abn-stack-backend-api")
    assert hpa["spec"]["minReplicas"] >= 2 and hpa["spec"]["scaleTargetRef"]["name"] == "abn-stack-backend-api"
    # Under an HPA the Deployment leaves replicas to it (no fight on every upgrade).
    assert "replicas" not in one(prod, "Deployment", "abn-stack-backend-api")["spec"]
    pdbs = {d["metadata"]["name"]: d["spec"] for d in by_kind(prod, "PodDisruptionBudget")}
    assert pdbs["abn-stack-backend-api"] == {"minAvailable": 1, "selector": pdbs["abn-stack-backend-api"]["selector"]}
    assert "abn-stack-data-api" in pdbs
    assert urlsplit(running_env(prod, "Deployment", "abn-stack-backend-api")["EXTERNAL_LOGS_URL"]).scheme == "https"


# --- hardening ----------------------------------------------------------------------------------


@pytest.mark.parametrize("env", ENVS)
def test_every_container_is_hardened_with_resources(env: str) -> None:
    specs = list(pod_specs(objects(env)))
    assert len(specs) >= 4
    for where, spec in specs:
        assert spec["automountServiceAccountToken"] is False, where
        pod_sc = spec["securityContext"]
        assert pod_sc["runAsNonRoot"] is True and pod_sc["seccompProfile"]["type"] == "RuntimeDefault", where
        for container in spec["containers"] + spec.get("initContainers", []):
            sc = container["securityContext"]
            assert sc["runAsNonRoot"] is True, where
            assert sc["runAsUser"] != 0, where
            assert sc["readOnlyRootFilesystem"] is True, where
            assert sc["allowPrivilegeEscalation"] is False, where
            assert sc.get("privileged", False) is False, where
            assert sc["capabilities"]["drop"] == ["ALL"] and not sc["capabilities"].get("add"), where
            assert sc["seccompProfile"]["type"] == "RuntimeDefault", where
            for bound in ("requests", "limits"):
                assert {"cpu", "memory"} <= set(container["resources"][bound]), f"{where} {bound}"


@pytest.mark.parametrize("env", ENVS)
def test_every_long_running_container_has_probes(env: str) -> None:
    """Servers get startup, liveness and readiness probes; run-once pods (CronJob, helm test) have
    nothing to probe and are bounded by activeDeadlineSeconds instead, like the config-check Jobs."""
    for where, spec in pod_specs(objects(env)):
        if where.startswith(("CronJob/", "Pod/", "Job/")):
            assert spec["restartPolicy"] == "Never", where
            continue
        for container in spec["containers"]:
            assert container["livenessProbe"]["httpGet"]["path"] == "/healthz", where
            assert container["readinessProbe"]["httpGet"]["path"] == "/readyz", where
            assert container["startupProbe"]["httpGet"]["path"] == "/healthz", where


@pytest.mark.parametrize("env", ENVS)
def test_service_account_tokens_are_not_mounted(env: str) -> None:
    for account in by_kind(objects(env), "ServiceAccount"):
        assert account["automountServiceAccountToken"] is False, account["metadata"]["name"]


@pytest.mark.parametrize("env", ENVS)
def test_env_vars_are_the_agreed_names(env: str) -> None:
    docs = objects(env)
    names = set()
    for config in by_kind(docs, "ConfigMap"):
        names |= set(config["data"])
    for _, spec in pod_specs(docs):
        for container in spec["containers"]:
            names |= {e["name"] for e in container.get("env", [])}
    assert names <= KNOWN_ENV, names - KNOWN_ENV


def test_no_plaintext_flag_to_the_provider_in_any_environment() -> None:
    """Dev's stand-in provider speaks HTTPS like a real one, so no environment needs the dev-only
    EXTERNAL_LOGS_ALLOW_PLAINTEXT, and every provider URL is https://."""
    for env in ENVS:
        for object_id, spec in pod_specs(objects(env)):
            for container in spec["containers"]:
                env_vars = {e["name"]: e.get("value") for e in container.get("env", [])}
                assert "EXTERNAL_LOGS_ALLOW_PLAINTEXT" not in env_vars, (env, object_id)
                if env_vars.get("EXTERNAL_LOGS_URL"):
                    assert env_vars["EXTERNAL_LOGS_URL"].startswith("https://"), (env, object_id)


def openssl(*args: str, stdin: bytes | None = None) -> str:
    """The openssl command line (a real X.509 implementation, not a hand-written check)."""
    return subprocess.run(["openssl", *args], input=stdin, capture_output=True, check=True).stdout.decode()


def pod_secret_items(spec: dict[str, Any], secret: str) -> list[set[str] | None]:
    """The keys of `secret` each volume of the pod projects (None: the whole Secret)."""
    found = []
    for volume in spec.get("volumes") or []:
        source = volume.get("secret")
        if source and source["secretName"] == secret:
            found.append({i["key"] for i in source["items"]} if source.get("items") else None)
    return found


@pytest.mark.skipif(shutil.which("openssl") is None, reason="no openssl command on this machine")
@pytest.mark.parametrize("release", ["abn-stack", "demo"])
def test_dev_log_provider_serves_https_with_a_release_ca(release: str, tmp_path) -> None:
    docs = objects("dev", release=release)
    namespace = NAMESPACES["dev"]
    provider = f"{release}-log-provider"
    secret = one(docs, "Secret", f"{provider}-tls")
    assert secret["type"] == "kubernetes.io/tls"
    # A hook that runs before the config-check Jobs (weight 0), like the integration key.
    annotations = secret["metadata"]["annotations"]
    assert annotations["helm.sh/hook"] == "pre-install,pre-upgrade" and int(annotations["helm.sh/hook-weight"]) < 0
    pem = {k: base64.b64decode(v) for k, v in secret["data"].items()}
    assert set(pem) == {"ca.crt", "tls.crt", "tls.key"}
    (tmp_path / "ca.crt").write_bytes(pem["ca.crt"])
    (tmp_path / "tls.crt").write_bytes(pem["tls.crt"])
    # The leaf is signed by the CA, for the Service's names, and the key is the leaf's.
    assert openssl("verify", "-CAfile", str(tmp_path / "ca.crt"), "-purpose", "sslserver",
                   str(tmp_path / "tls.crt")).strip().endswith("OK")
    names = set(re.findall(r"DNS:([^,\s]+)", openssl("x509", "-noout", "-ext", "subjectAltName",
                                                      "-in", str(tmp_path / "tls.crt"))))
    assert names == {provider, f"{provider}.{namespace}", f"{provider}.{namespace}.svc",
                     f"{provider}.{namespace}.svc.cluster.local"}
    assert openssl("pkey", "-pubout", stdin=pem["tls.key"]) == openssl("x509", "-noout", "-pubkey", stdin=pem["tls.crt"])

    # log-provider serves it: the Secret's directory mounted, TLS_CERT_FILE/TLS_KEY_FILE naming it,
    # probes over HTTPS (the Deployment and its config-check Job see the same files).
    for kind, name in (("Deployment", provider), ("Job", f"{provider}-config-check")):
        env = running_env(docs, kind, name)
        workload = one(docs, kind, name)["spec"]["template"]["spec"]
        mount = next(m for m in workload["containers"][0]["volumeMounts"] if m["name"] == "tls")
        assert "subPath" not in mount and mount.get("readOnly") is True
        assert env["TLS_CERT_FILE"] == f"{mount['mountPath']}/tls.crt"
        assert env["TLS_KEY_FILE"] == f"{mount['mountPath']}/tls.key"
        assert pod_secret_items(workload, secret["metadata"]["name"]) == [{"tls.crt", "tls.key"}]
    container = one(docs, "Deployment", provider)["spec"]["template"]["spec"]["containers"][0]
    for probe in ("startupProbe", "livenessProbe", "readinessProbe"):
        assert container[probe]["httpGet"]["scheme"] == "HTTPS", probe

    # Every other pod gets ca.crt only, never the provider's key; the clients trust it.
    for object_id, spec in pod_specs(docs):
        if object_id.split("/")[1].startswith(provider):
            continue
        for items in pod_secret_items(spec, secret["metadata"]["name"]):
            assert items == {"ca.crt"}, object_id
    backend = running_env(docs, "Deployment", f"{release}-backend-api")
    assert urlsplit(backend["EXTERNAL_LOGS_URL"]).scheme == "https"
    assert urlsplit(backend["EXTERNAL_LOGS_URL"]).hostname in names
    backend_spec = one(docs, "Deployment", f"{release}-backend-api")["spec"]["template"]["spec"]
    assert pod_secret_items(backend_spec, secret["metadata"]["name"]) == [{"ca.crt"}]
    ca_mount = next(m for m in backend_spec["containers"][0]["volumeMounts"] if m["name"] == "log-provider-ca")
    assert backend["EXTERNAL_LOGS_CA_FILE"] == f"{ca_mount['mountPath']}/ca.crt"
    cronjob = one(docs, "CronJob", f"{release}-health-check")["spec"]["jobTemplate"]["spec"]["template"]["spec"]
    health_env = {e["name"]: e.get("value") for e in cronjob["containers"][0]["env"]}
    assert health_env["SSL_CERT_FILE"].endswith("/ca.crt")
    assert health_check_targets(cronjob["containers"][0]["args"])["log-provider"].startswith(f"https://{provider}.")


def test_log_provider_tls_from_an_existing_secret() -> None:
    """logProvider.tls.existingSecret (e.g. cert-manager's Certificate's): the chart makes no
    Secret of its own and mounts that one."""
    docs = render.render_objects(render.UMBRELLA, [render.env_values_file("dev")], release="abn-stack",
                                 namespace=NAMESPACES["dev"],
                                 extra_values={"logProvider": {"tls": {"existingSecret": "provider-cert"}}})
    assert not [d for d in docs if d["kind"] == "Secret" and d["metadata"]["name"].endswith("-tls")]
    spec = one(docs, "Deployment", "abn-stack-log-provider")["spec"]["template"]["spec"]
    assert pod_secret_items(spec, "provider-cert") == [{"tls.crt", "tls.key"}]
    cronjob = one(docs, "CronJob", "abn-stack-health-check")["spec"]["jobTemplate"]["spec"]["template"]["spec"]
    assert pod_secret_items(cronjob, "provider-cert") == [{"ca.crt"}]


#: The values the chart check renders besides the environments' own (scripts/check-charts.sh).
TEST_VALUES = render.REPO_ROOT / "deployment" / "helm" / "tests" / "values"


@pytest.mark.parametrize("env, extra", [(env, None) for env in ENVS] + [
    ("prod", "alerting.yaml"), ("prod", "backup.yaml"), ("dev", "extensions.yaml")])
def test_a_hook_pod_reads_only_what_exists_when_it_runs(env: str, extra: str | None) -> None:
    """Helm runs a phase's hooks before it creates (pre-install) or updates (pre-upgrade) the
    release's own objects. A hook pod that mounts or reads a Secret or ConfigMap the chart makes
    as a release object would wait for it at install until the hook times out, and check the
    previous revision's copy at an upgrade. So each one a hook pod reads is a hook of the same
    phase with a lower weight, or none of the chart's (the operator's). (The health-check's
    config check once mounted the release's alerting ConfigMap.)"""
    docs = objects(env, extra=yaml.safe_load((TEST_VALUES / extra).read_text()) if extra else None)
    made = {(d["kind"], d["metadata"]["name"]): podspec.hooks_of(d) for d in docs if d["kind"] in ("Secret", "ConfigMap")}
    checked = 0
    for workload in podspec.workloads(docs):
        for phase in workload.hooks:
            if phase == "test":
                continue  # helm test runs on an installed release: every object exists.
            for kind, name in pod_reads(workload.pod_spec):
                if (kind, name) in made:
                    phases, weight = made[(kind, name)]
                    assert phase in phases and weight < workload.hook_weight, (
                        f"{workload.kind}/{workload.name} ({phase} hook, weight {workload.hook_weight}) reads "
                        f"{kind}/{name}, which Helm has not made yet (hook phases {phases}, weight {weight})")
                checked += 1
    # The chart defaults set no key, no alerting, no provider: nothing to read.
    assert checked or env == "default", "no hook pod reads a Secret or ConfigMap: the test checks nothing"


def pod_reads(spec: dict[str, Any]) -> set[tuple[str, str]]:
    """The Secrets and ConfigMaps a pod reads: volumes, env valueFrom, envFrom."""
    found = set()
    for volume in spec.get("volumes") or []:
        if "secret" in volume:
            found.add(("Secret", volume["secret"]["secretName"]))
        if "configMap" in volume:
            found.add(("ConfigMap", volume["configMap"]["name"]))
    for container in spec.get("initContainers", []) + spec["containers"]:
        for var in container.get("env") or []:
            source = var.get("valueFrom") or {}
            if "secretKeyRef" in source:
                found.add(("Secret", source["secretKeyRef"]["name"]))
            if "configMapKeyRef" in source:
                found.add(("ConfigMap", source["configMapKeyRef"]["name"]))
        for source in container.get("envFrom") or []:
            if "secretRef" in source:
                found.add(("Secret", source["secretRef"]["name"]))
            if "configMapRef" in source:
                found.add(("ConfigMap", source["configMapRef"]["name"]))
    return found


class StandInApiServer:
    """Just enough of a Kubernetes API server for Helm's `lookup`: the discovery of v1 and GET of
    a Secret by namespace and name (404 for any other), from `secrets` ({(namespace, name): the
    object}). Every path asked is in `asked`. On loopback, for one test."""

    def __init__(self, secrets: dict[tuple[str, str], dict[str, Any]]):
        self.secrets = secrets
        self.asked: list[str] = []
        server = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def log_message(self, *args: Any) -> None:
                pass

            def do_GET(self) -> None:  # noqa: N802 (the http.server name)
                path = self.path.split("?", 1)[0]
                server.asked.append(path)
                code, body = 404, {"kind": "Status", "apiVersion": "v1", "status": "Failure", "reason": "NotFound", "code": 404}
                if path == "/api/v1":
                    code, body = 200, {"kind": "APIResourceList", "groupVersion": "v1", "resources": [
                        {"name": "secrets", "singularName": "secret", "namespaced": True, "kind": "Secret",
                         "verbs": ["get", "list"]}]}
                parts = path.strip("/").split("/")
                if len(parts) == 6 and parts[:2] == ["api", "v1"] and parts[2] == "namespaces" and parts[4] == "secrets":
                    found = server.secrets.get((parts[3], parts[5]))
                    if found is not None:
                        code, body = 200, found
                data = json.dumps(body).encode()
                self.send_response(code)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


def test_an_upgrade_keeps_the_log_provider_ca_through_lookup() -> None:
    """What `helm template` cannot show (lookup answers nothing offline, so each render makes a new
    CA): rendered as `helm upgrade --dry-run=server` does, against an API server that holds the
    Secret an earlier install made, the chart hands back that Secret's data unchanged, and two such
    renders are identical manifest for manifest (so `helm diff upgrade` shows nothing). Where the
    Secret is missing, or lacks a key, a new pair is made."""
    namespace, name = NAMESPACES["dev"], "abn-stack-log-provider-tls"
    installed = one(objects("dev"), "Secret", name)
    api = StandInApiServer({(namespace, name): {"apiVersion": "v1", "kind": "Secret", "type": "kubernetes.io/tls",
                                               "metadata": {"name": name, "namespace": namespace},
                                               "data": installed["data"]}})
    try:
        files = [render.env_values_file("dev")]
        upgrade = render.render_in_cluster(api.url, render.UMBRELLA, files, namespace=namespace)
        assert f"/api/v1/namespaces/{namespace}/secrets/{name}" in api.asked, api.asked
        kept = one(render.objects(upgrade), "Secret", name)
        assert kept["data"] == installed["data"]
        assert kept["metadata"]["annotations"]["helm.sh/hook"] == "pre-install,pre-upgrade"
        assert render.render_in_cluster(api.url, render.UMBRELLA, files, namespace=namespace) == upgrade
        # Offline, the same values make a new CA every time: why the offline comparisons leave
        # this Secret's data out (render.comparable).
        assert one(render.render_objects(render.UMBRELLA, files, namespace=namespace), "Secret", name)["data"] != installed["data"]

        incomplete = {k: v for k, v in installed["data"].items() if k != "tls.key"}
        api.secrets[(namespace, name)]["data"] = incomplete
        remade = one(render.objects(render.render_in_cluster(api.url, render.UMBRELLA, files, namespace=namespace)), "Secret", name)
        assert set(remade["data"]) == {"ca.crt", "tls.crt", "tls.key"} and remade["data"]["ca.crt"] != installed["data"]["ca.crt"]
        del api.secrets[(namespace, name)]
        fresh = one(render.objects(render.render_in_cluster(api.url, render.UMBRELLA, files, namespace=namespace)), "Secret", name)
        assert fresh["data"]["ca.crt"] not in (installed["data"]["ca.crt"], remade["data"]["ca.crt"])
    finally:
        api.close()


@pytest.mark.parametrize("env", ENVS)
def test_grace_period_covers_drain_and_shutdown(env: str) -> None:
    docs = objects(env)
    workloads = [("Deployment", "abn-stack-backend-api"), ("StatefulSet", "abn-stack-data-api")]
    if env == "dev":
        workloads.append(("Deployment", "abn-stack-log-provider"))
    for kind, name in workloads:
        workload = one(docs, kind, name)
        drain = seconds(setting(docs, kind, name, "DRAIN_PERIOD"))
        shutdown = seconds(setting(docs, kind, name, "SHUTDOWN_TIMEOUT"))
        assert drain > 0, f"{name}: a pod must drain before its listener closes"
        assert workload["spec"]["template"]["spec"]["terminationGracePeriodSeconds"] > drain + shutdown


def test_grace_period_refuses_what_does_not_cover_drain_and_shutdown(tmp_path) -> None:
    extra = {"backend-api": {"config": {"drainPeriodSeconds": 20, "shutdownTimeoutSeconds": 15}}}
    with pytest.raises(Exception, match="terminationGracePeriodSeconds"):
        objects("dev", extra=extra)


# --- labels and rollouts ------------------------------------------------------------------------


@pytest.mark.parametrize("env", ENVS)
def test_every_object_has_the_recommended_labels(env: str) -> None:
    for doc in objects(env):
        labels = doc["metadata"].get("labels", {})
        for key in ("app.kubernetes.io/name", "app.kubernetes.io/instance", "app.kubernetes.io/version",
                    "app.kubernetes.io/managed-by", "app.kubernetes.io/part-of", "helm.sh/chart"):
            assert key in labels, f"{doc['kind']}/{doc['metadata']['name']} lacks {key}"
        assert labels["app.kubernetes.io/instance"] == render.RELEASE


def test_config_and_secret_changes_roll_the_pods() -> None:
    """Settings are the pod template's own env, so a change rolls the pods; in env delivery the
    chart-made dev Secret is outside the template, so its checksum does that."""
    def template(extra: dict[str, Any], kind: str = "Deployment", name: str = "abn-stack-backend-api") -> dict[str, Any]:
        return one(objects("dev", extra=extra), kind, name)["spec"]["template"]

    env = {"integrationKeyDelivery": "env"}
    base = template({"backend-api": {**env, "config": {"rustLog": "info"}}})
    config_changed = template({"backend-api": {**env, "config": {"rustLog": "debug"}}})
    secret_changed = template({"backend-api": {**env, "integrationKey": {"value": "another-dev-key"}}})
    assert config_changed["spec"] != base["spec"]
    assert config_changed["metadata"]["annotations"]["checksum/secret"] == base["metadata"]["annotations"]["checksum/secret"]
    assert secret_changed["metadata"]["annotations"]["checksum/secret"] != base["metadata"]["annotations"]["checksum/secret"]
    data = template({"data-api": {"config": {"simulatedLatencyMs": 5}}}, "StatefulSet", "abn-stack-data-api")
    assert data["spec"] != template({}, "StatefulSet", "abn-stack-data-api")["spec"]


@pytest.mark.parametrize("env", ENVS)
def test_only_what_the_operator_chose_is_rendered(env: str) -> None:
    """The binaries and images own their defaults: no rendered variable restates one."""
    docs = objects(env)
    for workload in podspec.workloads(docs):
        for container in workload.pod_spec["containers"]:
            name = binaries.name_of(container["image"])
            defaults = binaries.declared_defaults(name) | binaries.image_env(name)
            for var in container.get("env") or []:
                if "value" in var and var["name"] in defaults:
                    assert var["value"] != defaults[var["name"]], (
                        f"{workload.kind}/{workload.name}: {var['name']}={var['value']} restates the default")


# --- health-check -------------------------------------------------------------------------------


@pytest.mark.parametrize("release", ["abn-stack", "demo"])
@pytest.mark.parametrize("env", ENVS)
def test_health_check_targets_are_the_release_services(env: str, release: str) -> None:
    docs = objects(env, release=release)
    services = {s["metadata"]["name"]: s for s in by_kind(docs, "Service") if s["spec"].get("clusterIP") != "None"}
    cronjob = one(docs, "CronJob", f"{release}-health-check")
    job_args = cronjob["spec"]["jobTemplate"]["spec"]["template"]["spec"]["containers"][0]["args"]
    test_pod = one(docs, "Pod", f"{release}-health-check-test")
    assert test_pod["metadata"]["annotations"]["helm.sh/hook"] == "test"
    expected = {"backend-api", "data-api"} | ({"log-provider"} if env == "dev" else set())
    for args in (job_args, test_pod["spec"]["containers"][0]["args"]):
        assert "--once" in args
        targets = health_check_targets(args)
        assert set(targets) == expected
        for name, url in targets.items():
            parts = urlsplit(url)
            service_name, namespace = parts.hostname.split(".")[:2]
            assert service_name in services, f"{name} -> {url}: no such Service in the release"
            assert service_name.startswith(release)
            assert namespace == NAMESPACES[env]
            service = services[service_name]
            assert service["metadata"]["labels"]["app.kubernetes.io/name"] == name
            assert parts.port == service["spec"]["ports"][0]["port"]
            assert parts.path == "/readyz"
    assert len(services) == len(expected)


@pytest.mark.parametrize("env", ENVS)
def test_health_check_cronjob_shape(env: str) -> None:
    docs = objects(env)
    cronjob = one(docs, "CronJob", "abn-stack-health-check")["spec"]
    assert cronjob["concurrencyPolicy"] == "Forbid"
    assert cronjob["successfulJobsHistoryLimit"] >= 1 and cronjob["failedJobsHistoryLimit"] >= 1
    job = cronjob["jobTemplate"]["spec"]
    assert 0 < job["activeDeadlineSeconds"] <= 600
    pod = job["template"]["spec"]
    args = pod["containers"][0]["args"]
    assert "--output" not in args, "the image's HEALTHCHECK_OUTPUT is the history file"
    output = setting(docs, "CronJob", "abn-stack-health-check", "HEALTHCHECK_OUTPUT")
    mount = pod["containers"][0]["volumeMounts"][0]
    assert output.startswith(mount["mountPath"] + "/")
    volume = next(v for v in pod["volumes"] if v["name"] == mount["name"])
    one(docs, "PersistentVolumeClaim", volume["persistentVolumeClaim"]["claimName"])


# --- data-api volume ----------------------------------------------------------------------------


@pytest.mark.parametrize("env", ENVS)
def test_data_api_volume_is_mounted_at_var_data_logs(env: str) -> None:
    docs = objects(env)
    statefulset = one(docs, "StatefulSet", "abn-stack-data-api")
    container = statefulset["spec"]["template"]["spec"]["containers"][0]
    mounts = {m["name"]: m["mountPath"] for m in container["volumeMounts"]}
    assert mounts == {"data": "/var/data/logs"}
    claims = {c["metadata"]["name"]: c for c in statefulset["spec"]["volumeClaimTemplates"]}
    assert claims["data"]["spec"]["accessModes"] == ["ReadWriteOnce"]
    env_vars = {e["name"]: e for e in container["env"]}
    assert env_vars["INSTANCE_ID"]["valueFrom"]["fieldRef"]["fieldPath"] == "metadata.name"
    assert setting(docs, "StatefulSet", "abn-stack-data-api", "LOG_DIR") == "/var/data/logs"
    assert statefulset["spec"]["serviceName"] in {s["metadata"]["name"] for s in by_kind(docs, "Service")}


def quantity_bytes(size: str) -> int:
    units = {"Mi": 2**20, "Gi": 2**30}
    return int(size[:-2]) * units[size[-2:]]


@pytest.mark.parametrize("env", ENVS)
def test_retention_fits_the_volumes(env: str) -> None:
    docs = objects(env)
    claim = one(docs, "StatefulSet", "abn-stack-data-api")["spec"]["volumeClaimTemplates"][0]
    capacity = quantity_bytes(claim["spec"]["resources"]["requests"]["storage"])
    retention = size_bytes(setting(docs, "StatefulSet", "abn-stack-data-api", "LOG_RETENTION_BYTES"))
    assert retention <= capacity * 0.8
    history = one(docs, "PersistentVolumeClaim", "abn-stack-health-check")
    capacity = quantity_bytes(history["spec"]["resources"]["requests"]["storage"])
    keep = int(setting(docs, "CronJob", "abn-stack-health-check", "HEALTHCHECK_OUTPUT_KEEP_FILES"))
    kept = (keep + 1) * size_bytes(setting(docs, "CronJob", "abn-stack-health-check", "HEALTHCHECK_OUTPUT_MAX_BYTES"))
    assert kept <= capacity * 0.8


def test_data_api_existing_claim_and_no_persistence() -> None:
    docs = objects("dev", extra={"data-api": {"persistence": {"existingClaim": "shared-logs", "accessModes": ["ReadWriteMany"]}}})
    statefulset = one(docs, "StatefulSet", "abn-stack-data-api")["spec"]
    assert "volumeClaimTemplates" not in statefulset
    assert statefulset["template"]["spec"]["volumes"] == [{"name": "data", "persistentVolumeClaim": {"claimName": "shared-logs"}}]
    docs = objects("dev", extra={"data-api": {"persistence": {"enabled": False}}})
    volumes = one(docs, "StatefulSet", "abn-stack-data-api")["spec"]["template"]["spec"]["volumes"]
    assert "emptyDir" in volumes[0]
    notes = next(text for path, text in rendered("dev", extra={"data-api": {"persistence": {"enabled": False}}}).items() if path.endswith("NOTES.txt"))
    assert "persistence is disabled" in notes


# --- data-api shared mode -----------------------------------------------------------------------

SHARED = {"data-api": {"replicaCount": 3, "persistence": {"shared": {"enabled": True}}}}


def test_data_api_shared_mode_runs_every_replica_on_one_rwx_claim() -> None:
    docs = objects("dev", extra=SHARED)
    statefulset = one(docs, "StatefulSet", "abn-stack-data-api")["spec"]
    assert "volumeClaimTemplates" not in statefulset and "persistentVolumeClaimRetentionPolicy" not in statefulset
    assert statefulset["replicas"] == 3
    assert statefulset["template"]["spec"]["volumes"] == [
        {"name": "data", "persistentVolumeClaim": {"claimName": "abn-stack-data-api-shared"}}]
    claim = one(docs, "PersistentVolumeClaim", "abn-stack-data-api-shared")
    assert claim["spec"]["accessModes"] == ["ReadWriteMany"]
    assert claim["spec"]["resources"]["requests"]["storage"] == "10Gi"
    assert claim["metadata"]["annotations"]["helm.sh/resource-policy"] == "keep"
    # Every pod is still its own writer: the pod name is its folder.
    container = statefulset["template"]["spec"]["containers"][0]
    instance = next(e for e in container["env"] if e["name"] == "INSTANCE_ID")
    assert instance["valueFrom"]["fieldRef"]["fieldPath"] == "metadata.name"
    assert not by_kind(docs, "HorizontalPodAutoscaler")
    assert all("legacy" not in j["metadata"]["name"] for j in by_kind(docs, "Job"))


def test_data_api_shared_mode_on_an_existing_claim_makes_no_claim() -> None:
    extra = {"data-api": {"persistence": {"shared": {"enabled": True, "existingClaim": "team-efs"}}}}
    docs = objects("prod", extra=extra)
    spec = one(docs, "StatefulSet", "abn-stack-data-api")["spec"]
    assert spec["template"]["spec"]["volumes"] == [{"name": "data", "persistentVolumeClaim": {"claimName": "team-efs"}}]
    assert "abn-stack-data-api-shared" not in {c["metadata"]["name"] for c in by_kind(docs, "PersistentVolumeClaim")}
    pdb = one(docs, "PodDisruptionBudget", "abn-stack-data-api")
    assert pdb["spec"]["selector"]["matchLabels"].items() <= spec["template"]["metadata"]["labels"].items()


def test_data_api_autoscaling_follows_the_statefulset_in_shared_mode_only() -> None:
    extra = {"data-api": {**SHARED["data-api"], "autoscaling": {"enabled": True, "minReplicas": 2, "maxReplicas": 5}}}
    docs = objects("dev", extra=extra)
    hpa = one(docs, "HorizontalPodAutoscaler", "abn-stack-data-api")
    assert hpa["spec"]["scaleTargetRef"] == {"apiVersion": "apps/v1", "kind": "StatefulSet", "name": "abn-stack-data-api"}
    assert (hpa["spec"]["minReplicas"], hpa["spec"]["maxReplicas"]) == (2, 5)
    with pytest.raises(helm.HelmRenderError, match="autoscaling needs persistence.shared.enabled"):
        objects("dev", extra={"data-api": {"autoscaling": {"enabled": True}}})


def test_data_api_legacy_import_job_reads_the_legacy_claim_into_the_shared_one(tmp_path) -> None:
    extra = {"data-api": {**SHARED["data-api"], "legacyImport": {"enabled": True, "existingClaim": "flask-logs"}}}
    docs = objects("dev", extra=extra)
    job = one(docs, "Job", "abn-stack-data-api-legacy-import")
    assert job["metadata"]["annotations"]["helm.sh/hook"] == "post-install,post-upgrade"
    pod = job["spec"]["template"]["spec"]
    container = pod["containers"][0]
    assert container["args"] == ["import-legacy", "--from", "/var/data/legacy"]
    assert container["image"] == one(docs, "StatefulSet", "abn-stack-data-api")["spec"]["template"]["spec"]["containers"][0]["image"]
    mounts = {m["name"]: (m["mountPath"], m.get("readOnly", False)) for m in container["volumeMounts"]}
    assert mounts == {"data": ("/var/data/logs", False), "legacy": ("/var/data/legacy", True)}
    claims = {v["name"]: v["persistentVolumeClaim"]["claimName"] for v in pod["volumes"]}
    assert claims == {"data": "abn-stack-data-api-shared", "legacy": "flask-logs"}
    assert pod["securityContext"]["runAsNonRoot"] and container["securityContext"]["readOnlyRootFilesystem"]
    with pytest.raises(helm.HelmRenderError, match="legacyImport needs persistence.shared.enabled"):
        objects("dev", extra={"data-api": {"legacyImport": {"enabled": True, "existingClaim": "x"}}})
    error = render_error("dev", "data-api:\n  persistence:\n    shared:\n      enabled: true\n  legacyImport:\n    enabled: true\n", tmp_path)
    assert "existingClaim" in error
    # The Job's pod is no replica: neither the Service nor the StatefulSet's selector (the PDB's)
    # matches it.
    labels = job["spec"]["template"]["metadata"]["labels"]
    for selector in (one(docs, "Service", "abn-stack-data-api")["spec"]["selector"],
                     one(docs, "StatefulSet", "abn-stack-data-api")["spec"]["selector"]["matchLabels"]):
        assert not selector.items() <= labels.items(), (selector, labels)
    assert labels["app.kubernetes.io/component"] == "legacy-import"
    assert "initContainers" not in one(docs, "StatefulSet", "abn-stack-data-api")["spec"]["template"]["spec"]


def test_data_api_legacy_import_jobs_pod_is_the_shared_pod_template() -> None:
    """Through abn-common.podSpec: the pods' extension points (but no sidecar), and
    legacyImport.resources over the container's."""
    extra = {"data-api": {**SHARED["data-api"], "legacyImport": {
                 "enabled": True, "existingClaim": "flask-logs",
                 "resources": {"requests": {"cpu": "50m", "memory": "64Mi"}, "limits": {"cpu": "1", "memory": "1Gi"}}},
             "nodeSelector": {"disk": "any"}, "extraEnv": [{"name": "RUST_LOG", "value": "debug"}],
             "extraContainers": [{"name": "shipper", "image": "busybox:1.36"}]}}
    docs = objects("dev", extra=extra)
    pod = one(docs, "Job", "abn-stack-data-api-legacy-import")["spec"]["template"]["spec"]
    assert pod["nodeSelector"] == {"disk": "any"} and [c["name"] for c in pod["containers"]] == ["import-legacy"]
    container = pod["containers"][0]
    assert {"name": "RUST_LOG", "value": "debug"} in container["env"]
    assert container["resources"]["limits"]["memory"] == "1Gi"


def test_data_api_legacy_import_as_an_init_container_of_every_pod(tmp_path) -> None:
    extra = {"data-api": {**SHARED["data-api"], "initContainers": [{"name": "operator-first", "image": "busybox:1.36"}],
                          "legacyImport": {"enabled": True, "mode": "initContainer", "existingClaim": "flask-logs"}}}
    docs = objects("dev", extra=extra)
    assert not [j for j in by_kind(docs, "Job") if "legacy" in j["metadata"]["name"]]
    pod = one(docs, "StatefulSet", "abn-stack-data-api")["spec"]["template"]["spec"]
    server = pod["containers"][0]
    # The chart's import first, then the operator's; the server's image, securityContext, resources.
    assert [c["name"] for c in pod["initContainers"]] == ["import-legacy", "operator-first"]
    init = pod["initContainers"][0]
    assert init["args"] == ["import-legacy", "--from", "/var/data/legacy"]
    for field in ("image", "imagePullPolicy", "securityContext", "resources"):
        assert init[field] == server[field], field
    assert {m["name"]: (m["mountPath"], m.get("readOnly", False)) for m in init["volumeMounts"]} == {
        "data": ("/var/data/logs", False), "legacy": ("/var/data/legacy", True)}
    claims = {v["name"]: v["persistentVolumeClaim"] for v in pod["volumes"]}
    assert claims == {"data": {"claimName": "abn-stack-data-api-shared"}, "legacy": {"claimName": "flask-logs", "readOnly": True}}
    assert "legacy" not in {m["name"] for m in server["volumeMounts"]}
    error = render_error("dev", "data-api:\n  persistence:\n    shared:\n      enabled: true\n  legacyImport:\n"
                         "    enabled: true\n    existingClaim: x\n    mode: sidecar\n", tmp_path)
    assert "mode" in error, error


def test_data_api_orphan_retention_is_rendered_only_when_set_in_shared_mode(tmp_path) -> None:
    variables = ("LOG_ORPHAN_RETENTION", "LOG_SHARED_RETENTION_BYTES", "LOG_ORPHAN_SWEEP_INTERVAL")
    unset = running_env(objects("dev", extra=SHARED), "StatefulSet", "abn-stack-data-api")
    assert not set(variables) & set(unset), unset
    chosen = {"orphanRetention": "3d", "retentionBytes": 8 << 30, "orphanSweepInterval": "30s"}
    shared = running_env(objects("dev", extra={"data-api": {"persistence": {"shared": {"enabled": True, **chosen}}}}),
                         "StatefulSet", "abn-stack-data-api")
    assert [shared.get(v) for v in variables] == ["3d", str(8 << 30), "30s"], shared
    per_pod = running_env(objects("dev", extra={"data-api": {"persistence": {"shared": {"enabled": False, **chosen}}}}),
                          "StatefulSet", "abn-stack-data-api")
    assert not set(variables) & set(per_pod), per_pod
    for misspelt in ("orphanRetension: 3d", "orphanRetention: 3 days", "retentionBytes: 8GB", "orphanSweepInterval: 1d"):
        error = render_error("dev", f"data-api:\n  persistence:\n    shared:\n      {misspelt}\n", tmp_path)
        assert "shared" in error, (misspelt, error)


def test_data_api_backup_is_off_by_default_and_a_cronjob_to_a_second_claim_when_enabled() -> None:
    assert not [c for c in by_kind(objects("dev"), "CronJob") if "backup" in c["metadata"]["name"]]
    extra = {"data-api": {**SHARED["data-api"], "backup": {"enabled": True, "schedule": "5 * * * *", "retention": 3}}}
    docs = objects("dev", extra=extra)
    cron = one(docs, "CronJob", "abn-stack-data-api-backup")
    assert (cron["spec"]["schedule"], cron["spec"]["concurrencyPolicy"]) == ("5 * * * *", "Forbid")
    pod = cron["spec"]["jobTemplate"]["spec"]["template"]["spec"]
    container = pod["containers"][0]
    assert container["args"] == ["backup", "--into", "/var/data/backup", "--keep", "3"]
    statefulset = one(docs, "StatefulSet", "abn-stack-data-api")
    assert container["image"] == statefulset["spec"]["template"]["spec"]["containers"][0]["image"]
    mounts = {m["name"]: (m["mountPath"], m.get("readOnly", False)) for m in container["volumeMounts"]}
    assert mounts == {"data": ("/var/data/logs", True), "backup": ("/var/data/backup", False)}
    claims = {v["name"]: (v["persistentVolumeClaim"]["claimName"], v["persistentVolumeClaim"].get("readOnly", False)) for v in pod["volumes"]}
    assert claims == {"data": ("abn-stack-data-api-shared", True), "backup": ("abn-stack-data-api-backup", False)}
    made = one(docs, "PersistentVolumeClaim", "abn-stack-data-api-backup")
    assert made["metadata"]["annotations"]["helm.sh/resource-policy"] == "keep"
    assert made["spec"]["resources"]["requests"]["storage"] == "8Gi"
    assert pod["restartPolicy"] == "Never" and pod["automountServiceAccountToken"] is False
    assert pod["securityContext"]["runAsNonRoot"] and container["securityContext"]["readOnlyRootFilesystem"]
    # The backup pod is never one of the Service's or the StatefulSet's (and so the PDB's) pods.
    labels = cron["spec"]["jobTemplate"]["spec"]["template"]["metadata"]["labels"]
    assert not selects({"matchLabels": one(docs, "Service", "abn-stack-data-api")["spec"]["selector"]}, labels)
    assert not selects(statefulset["spec"]["selector"], labels)
    assert labels["app.kubernetes.io/component"] == "backup"

    # An existing claim for the copies: no chart-made one; an existing records claim is read.
    extra = {"data-api": {"persistence": {"existingClaim": "records"}, "backup": {"enabled": True, "claim": {"existingClaim": "copies"}}}}
    docs = objects("dev", extra=extra)
    pod = one(docs, "CronJob", "abn-stack-data-api-backup")["spec"]["jobTemplate"]["spec"]["template"]["spec"]
    assert {v["name"]: v["persistentVolumeClaim"]["claimName"] for v in pod["volumes"]} == {"data": "records", "backup": "copies"}
    assert "abn-stack-data-api-backup" not in {c["metadata"]["name"] for c in by_kind(docs, "PersistentVolumeClaim")}

    # Per-pod claims: each pod's folder on its own claim; the chart refuses and points at snapshots.
    with pytest.raises(helm.HelmRenderError, match="backup needs one claim holding every folder"):
        objects("dev", extra={"data-api": {"backup": {"enabled": True}}})


def test_data_api_log_format_version_is_rendered_only_when_set(tmp_path) -> None:
    assert "LOG_FORMAT_VERSION" not in running_env(objects("dev"), "StatefulSet", "abn-stack-data-api")
    docs = objects("dev", extra={"data-api": {"config": {"logFormatVersion": 2}}})
    assert running_env(docs, "StatefulSet", "abn-stack-data-api")["LOG_FORMAT_VERSION"] == "2"
    assert "logFormatVersion" in render_error("dev", "data-api:\n  config:\n    logFormatVersion: 3\n", tmp_path)


def test_data_api_backup_values_refuse_a_misspelling_and_a_retention_of_zero(tmp_path) -> None:
    shared = "data-api:\n  persistence:\n    shared:\n      enabled: true\n"
    error = render_error("dev", shared + "  backup:\n    enabled: true\n    retension: 3\n", tmp_path)
    assert "retension" in error
    error = render_error("dev", shared + "  backup:\n    enabled: true\n    retention: 0\n", tmp_path)
    assert "retention" in error


# --- network policy -----------------------------------------------------------------------------


def selects(selector: dict[str, Any], labels: dict[str, str]) -> bool:
    return all(labels.get(k) == v for k, v in selector.get("matchLabels", {}).items())


@pytest.mark.parametrize("env", ENVS)
def test_network_policies_default_deny_and_allow_the_stack_flows(env: str) -> None:
    docs = objects(env)
    policies = by_kind(docs, "NetworkPolicy")
    deny = one(docs, "NetworkPolicy", "abn-stack-default-deny")["spec"]
    assert deny["podSelector"] == {"matchLabels": {"app.kubernetes.io/instance": "abn-stack"}}
    assert set(deny["policyTypes"]) == {"Ingress", "Egress"} and "ingress" not in deny and "egress" not in deny
    pods = {where: labels for where, labels in (
        (f"{d['kind']}/{d['metadata']['name']}",
         (d["spec"]["jobTemplate"]["spec"]["template"] if d["kind"] == "CronJob" else d["spec"]["template"])["metadata"]["labels"])
        for d in docs if d["kind"] in WORKLOAD_KINDS | {"CronJob"})}
    # Every pod of the release is under the default deny, and has DNS.
    dns = one(docs, "NetworkPolicy", "abn-stack-dns")["spec"]
    for where, labels in pods.items():
        assert selects(deny["podSelector"], labels) and selects(dns["podSelector"], labels), where

    def egress_ports(source: dict[str, str], target: dict[str, str]) -> set[int]:
        ports = set()
        for policy in policies:
            spec = policy["spec"]
            if "Egress" in spec["policyTypes"] and selects(spec["podSelector"], source):
                for rule in spec.get("egress") or []:
                    if any("podSelector" in peer and selects(peer["podSelector"], target) for peer in rule.get("to", [])):
                        ports |= {p["port"] for p in rule["ports"]}
        return ports

    def ingress_allowed(target: dict[str, str], source: dict[str, str]) -> bool:
        for policy in policies:
            spec = policy["spec"]
            if "Ingress" in spec["policyTypes"] and selects(spec["podSelector"], target):
                for rule in spec.get("ingress") or []:
                    peers = rule.get("from")
                    if peers is None or any("podSelector" in p and selects(p["podSelector"], source) for p in peers):
                        return True
        return False

    health = pods["CronJob/abn-stack-health-check"]
    backend = pods["Deployment/abn-stack-backend-api"]
    data = pods["StatefulSet/abn-stack-data-api"]
    assert egress_ports(health, backend) == {5000} and ingress_allowed(backend, health)
    assert egress_ports(health, data) == {5001} and ingress_allowed(data, health)
    assert ingress_allowed(backend, {"app": "anyone"}) and ingress_allowed(data, {"app": "anyone"})
    if env == "dev":
        provider = pods["Deployment/abn-stack-log-provider"]
        assert egress_ports(backend, provider) == {5002} and ingress_allowed(provider, backend)
        assert egress_ports(health, provider) == {5002} and ingress_allowed(provider, health)
        assert not ingress_allowed(provider, {"app": "anyone"})
    backend_egress = one(docs, "NetworkPolicy", "abn-stack-backend-api")["spec"]["egress"]
    external = [r for r in backend_egress if any("ipBlock" in p for p in r["to"])]
    if env == "prod":
        assert len(external) == 1 and external[0]["ports"] == [{"port": 443, "protocol": "TCP"}]
    else:
        # No external provider by default or in dev: nothing out of the backend but DNS (and dev's
        # log-provider).
        assert external == []


def test_network_policies_can_be_switched_off() -> None:
    assert by_kind(objects("prod", extra={"networkPolicy": {"enabled": False}}), "NetworkPolicy") == []


def test_api_ingress_can_be_restricted_but_keeps_the_health_check() -> None:
    peer = {"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "ingress-nginx"}}}
    docs = objects("prod", extra={"networkPolicy": {"apiIngressFrom": [peer]}})
    rule = one(docs, "NetworkPolicy", "abn-stack-backend-api")["spec"]["ingress"][0]
    assert rule["from"][0] == peer
    assert rule["from"][1]["podSelector"]["matchLabels"]["app.kubernetes.io/name"] == "health-check"


# --- monitoring CRDs ----------------------------------------------------------------------------

MONITORING_APIS = ("monitoring.coreos.com/v1", "monitoring.coreos.com/v1/ServiceMonitor",
                   "monitoring.coreos.com/v1/PrometheusRule")


@pytest.mark.parametrize("env", ENVS)
def test_service_monitors_only_when_the_crd_exists(env: str) -> None:
    assert not [d for d in objects(env) if d["apiVersion"].startswith("monitoring.coreos.com/")]
    docs = objects(env, api_versions=MONITORING_APIS)
    monitors = by_kind(docs, "ServiceMonitor")
    assert {m["metadata"]["name"] for m in monitors} == {"abn-stack-backend-api", "abn-stack-data-api"}
    for monitor in monitors:
        spec = monitor["spec"]
        matching = [s for s in by_kind(docs, "Service")
                    if selects(spec["selector"], s["metadata"]["labels"])
                    and not any(s["metadata"]["labels"].get(e["key"]) is not None
                                for e in spec["selector"].get("matchExpressions", []) if e["operator"] == "DoesNotExist")]
        assert len(matching) == 1, monitor["metadata"]["name"]
        port_names = {p["name"] for p in matching[0]["spec"]["ports"]}
        assert {e["port"] for e in spec["endpoints"]} <= port_names
        assert all(e["path"] == "/metrics" for e in spec["endpoints"])
        assert spec["jobLabel"] == "app.kubernetes.io/name"
    rule = one(docs, "PrometheusRule", "abn-stack")
    assert rule["spec"] == shipped_rules_for_mode("cronjob")


def shipped_rules_for_mode(mode: str | None) -> dict[str, Any]:
    """monitoring/'s rules as the chart ships them: of the health-check groups only the mode's."""
    with open(render.REPO_ROOT / "monitoring" / "prometheus" / "abn-stack-rules.yaml", encoding="utf-8") as handle:
        rules = yaml.safe_load(handle)
    groups = [g for g in rules["groups"]
              if not g["name"].startswith("abn-stack.health-check-") or g["name"] == f"abn-stack.health-check-{mode}"]
    assert len(groups) == len(rules["groups"]) - (2 if mode is None else 1)
    return {"groups": groups}


@pytest.mark.parametrize("health_check, mode", [
    ({"mode": "serve"}, "serve"), ({"mode": "cronjob"}, "cronjob"), ({"enabled": False}, None)])
def test_prometheus_rule_ships_the_health_check_rules_of_its_mode(health_check: dict[str, Any], mode: str | None) -> None:
    docs = objects("dev", extra={"healthCheck": health_check}, api_versions=MONITORING_APIS)
    assert one(docs, "PrometheusRule", "abn-stack")["spec"] == shipped_rules_for_mode(mode)


# --- schema -------------------------------------------------------------------------------------


def test_schema_rejects_a_wrong_type(tmp_path) -> None:
    error = render_error("dev", "backend-api:\n  replicaCount: two\n", tmp_path)
    assert "replicaCount" in error
    error = render_error("default", "healthCheck:\n  enabled: \"yes\"\n", tmp_path)
    assert "enabled" in error


@pytest.mark.parametrize("values_yaml, key", [
    ("replicas: 3\n", "replicas"),
    ("backend-api:\n  replicas: 3\n", "replicas"),
    ("data-api:\n  persistence:\n    sise: 2Gi\n", "sise"),
    ("healthCheck:\n  schedulle: '* * * * *'\n", "schedulle"),
])
def test_schema_rejects_unknown_keys(values_yaml: str, key: str, tmp_path) -> None:
    assert key in render_error("dev", values_yaml, tmp_path)


def test_schema_rejects_prod_without_integration_secret_name(tmp_path) -> None:
    with open(render.env_values_file("prod"), encoding="utf-8") as handle:
        prod = yaml.safe_load(handle)
    del prod["backend-api"]["integrationKeySecretName"]
    bad = tmp_path / "prod-without-secret.yaml"
    bad.write_text(yaml.safe_dump(prod))
    with pytest.raises(helm.HelmValuesError) as caught:
        render.render(render.UMBRELLA, [bad], namespace="abn-stack-prod")
    assert "integrationKeySecretName" in str(caught.value)


@pytest.mark.parametrize("values_yaml, key", [
    ("backend-api:\n  integrationKey:\n    create: true\n    value: oops\n", "create"),
    ("logProvider:\n  enabled: true\n", "enabled"),
    ("backend-api:\n  config:\n    externalLogsUrl: ''\n", "externalLogsUrl"),
])
def test_schema_rejects_dev_shortcuts_in_prod(values_yaml: str, key: str, tmp_path) -> None:
    assert key in render_error("prod", values_yaml, tmp_path)


def test_schema_rejects_a_url_without_a_key(tmp_path) -> None:
    error = render_error("default", "backend-api:\n  config:\n    externalLogsUrl: http://provider:5002/v1/logs\n", tmp_path)
    assert "integrationKeySecretName" in error


@pytest.mark.parametrize("env", ENVS)
def test_the_environment_files_pass_the_schema(env: str) -> None:
    assert objects(env)


# --- health-check serve mode ------------------------------------------------------------------

SERVE = {"healthCheck": {"mode": "serve", "interval": "15s"}}


@pytest.mark.parametrize("env", ENVS)
def test_health_check_serve_mode_is_a_deployment_on_the_cronjob_claim(env: str) -> None:
    cron = objects(env)
    docs = objects(env, extra=SERVE, api_versions=MONITORING_APIS)
    assert not [d for d in docs if d["kind"] == "CronJob"]
    deployment = one(docs, "Deployment", "abn-stack-health-check")["spec"]
    # One writer of the history, and the old pod gone before the new one mounts the claim.
    assert deployment["replicas"] == 1 and deployment["strategy"] == {"type": "Recreate"}
    pod = deployment["template"]["spec"]
    container = pod["containers"][0]
    assert container["args"][:3] == ["serve", "--interval", "15s"]
    cron_container = one(cron, "CronJob", "abn-stack-health-check")["spec"]["jobTemplate"]["spec"]["template"]["spec"]
    assert health_check_targets(container["args"]) == health_check_targets(cron_container["containers"][0]["args"])
    assert container["readinessProbe"]["httpGet"] == {"path": "/readyz", "port": "http"}
    assert container["livenessProbe"]["httpGet"]["path"] == "/healthz"
    assert container["ports"] == [{"name": "http", "containerPort": 5003, "protocol": "TCP"}]
    # The same claim in both modes, kept by Helm across the switch.
    assert pod["volumes"] == cron_container["volumes"]
    claim = one(docs, "PersistentVolumeClaim", pod["volumes"][0]["persistentVolumeClaim"]["claimName"])
    assert claim["metadata"]["annotations"]["helm.sh/resource-policy"] == "keep"
    assert claim == one(cron, "PersistentVolumeClaim", claim["metadata"]["name"])
    service = one(docs, "Service", "abn-stack-health-check")
    assert service["spec"]["ports"][0]["targetPort"] == "http"
    service_selector = {"matchLabels": service["spec"]["selector"]}
    assert selects(service_selector, deployment["template"]["metadata"]["labels"])
    # Only the serving pod: the helm test Pod has the health-check's other labels too.
    assert not selects(service_selector, one(docs, "Pod", "abn-stack-health-check-test")["metadata"]["labels"])
    monitor = one(docs, "ServiceMonitor", "abn-stack-health-check")["spec"]
    assert selects(monitor["selector"], service["metadata"]["labels"])
    assert monitor["endpoints"][0]["port"] == "http" and monitor["endpoints"][0]["path"] == "/metrics"
    # The pre-install check runs `serve --check-config` with the Deployment's arguments.
    check = one(docs, "Job", "abn-stack-health-check-config-check")["spec"]["template"]["spec"]["containers"][0]
    assert check["args"] == [*container["args"], "--check-config"]


def test_health_check_serve_mode_lets_callers_reach_the_page() -> None:
    policies = {p["metadata"]["name"]: p["spec"] for p in by_kind(objects("prod", extra=SERVE), "NetworkPolicy")}
    health = policies["abn-stack-health-check"]
    assert set(health["policyTypes"]) == {"Ingress", "Egress"}
    assert health["ingress"] == [{"ports": [{"port": "http", "protocol": "TCP"}]}]
    cron = {p["metadata"]["name"]: p["spec"] for p in by_kind(objects("prod"), "NetworkPolicy")}
    assert cron["abn-stack-health-check"]["policyTypes"] == ["Egress"]
