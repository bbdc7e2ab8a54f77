"""The shared pod template's extension points, images, common metadata, exposure and HPA behaviour:
each value rendered set and unset, on every workload that takes it, and the schema refusing a
misspelled key. (Strict Kubernetes validation and checkov of a render with them set: the
`extensions` render of scripts/check-charts.sh.)"""

from __future__ import annotations

import copy
from typing import Any

import pytest

import extensions
import podspec
from conftest import ENVS, objects
from test_render import by_kind, one, pod_specs, render_error, selects

#: Every workload of the release, by the values key that configures it, and its objects.
WORKLOAD_KEYS = {
    "backend-api": [("Deployment", "abn-stack-backend-api"), ("Job", "abn-stack-backend-api-config-check")],
    "data-api": [("StatefulSet", "abn-stack-data-api"), ("Job", "abn-stack-data-api-config-check")],
    "healthCheck": [("CronJob", "abn-stack-health-check"), ("Job", "abn-stack-health-check-config-check"),
                    ("Pod", "abn-stack-health-check-test")],
    "logProvider": [("Deployment", "abn-stack-log-provider"), ("Job", "abn-stack-log-provider-config-check")],
}
SERVING_KINDS = {"Deployment", "StatefulSet"}


def pod_settings(who: str) -> dict[str, Any]:
    """Every pod-template value, with names that say which workload they were set for."""
    return {
        "podLabels": {"example.com/pod-of": who},
        "podAnnotations": {"example.com/annotated": who},
        "imagePullSecrets": [f"{who}-pull", {"name": f"{who}-pull-2"}],
        "priorityClassName": f"{who}-priority",
        "nodeSelector": {"example.com/pool": who},
        "tolerations": [{"key": "example.com/dedicated", "operator": "Equal", "value": who, "effect": "NoSchedule"}],
        "affinity": {"nodeAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": {"nodeSelectorTerms": [
            {"matchExpressions": [{"key": "example.com/zone", "operator": "In", "values": [who]}]}]}}},
        "topologySpreadConstraints": [{"maxSkew": 1, "topologyKey": "kubernetes.io/hostname",
                                       "whenUnsatisfiable": "ScheduleAnyway",
                                       "labelSelector": {"matchLabels": {"example.com/pod-of": who}}}],
        "extraEnv": [{"name": "EXAMPLE_PLAIN", "value": "{{ .Release.Name }}-" + who},
                     {"name": "EXAMPLE_SECRET", "valueFrom": {"secretKeyRef": {"name": f"{who}-env", "key": "value"}}}],
        "extraEnvFrom": [{"configMapRef": {"name": f"{who}-settings"}, "prefix": "EXAMPLE_"}],
        "extraVolumes": [{"name": "extra", "configMap": {"name": f"{who}-files"}}],
        "extraVolumeMounts": [{"name": "extra", "mountPath": "/etc/example", "readOnly": True}],
        "initContainers": [{"name": "init", "image": "example/init:1", "args": [who],
                            "resources": {"limits": {"cpu": "50m", "memory": "16Mi"}}}],
        "extraContainers": [{"name": "shipper", "image": "example/shipper:1", "args": [who],
                             "securityContext": {"runAsNonRoot": True, "runAsUser": 1000, "readOnlyRootFilesystem": True,
                                                 "allowPrivilegeEscalation": False, "capabilities": {"drop": ["ALL"]}}}],
    }


ALL_SET = {"logProvider": {"enabled": True, **pod_settings("logProvider")}, "healthCheck": pod_settings("healthCheck"),
           "backend-api": pod_settings("backend-api"), "data-api": pod_settings("data-api")}


def pod_of(docs: list[dict[str, Any]], kind: str, name: str) -> tuple[dict[str, Any], dict[str, Any]]:
    """(pod metadata, pod spec) of a workload."""
    obj = one(docs, kind, name)
    if kind == "Pod":
        return obj["metadata"], obj["spec"]
    template = obj["spec"]["jobTemplate"]["spec"]["template"] if kind == "CronJob" else obj["spec"]["template"]
    return template.get("metadata") or {}, template["spec"]


@pytest.mark.parametrize("env", ENVS)
def test_unset_extension_points_render_nothing(env: str) -> None:
    docs = objects(env)
    for where, spec in pod_specs(docs):
        assert "initContainers" not in spec and "priorityClassName" not in spec, where
        assert len(spec["containers"]) == 1, where
        assert "envFrom" not in spec["containers"][0], where
        # The chart's own, plus dev's log-provider TLS (its Secret; backend-api's ca.crt from the
        # dev values' extraVolumes).
        assert {v["name"] for v in spec.get("volumes", [])} <= {"integration-key", "api-tokens", "history", "data",
                                                                "tls", "log-provider-ca"}, where
        assert "imagePullSecrets" not in spec, where
    assert not by_kind(docs, "Ingress") and not by_kind(docs, "HTTPRoute")
    for doc in docs:
        assert not [k for k in doc["metadata"].get("labels", {}) if k.startswith("example.com/")]


@pytest.mark.parametrize("values_key, serve", [(key, False) for key in sorted(WORKLOAD_KEYS)] + [("healthCheck", True)])
def test_every_workload_takes_every_pod_template_setting(values_key: str, serve: bool) -> None:
    extra = copy.deepcopy(ALL_SET)
    extra["global"] = {"imagePullSecrets": ["everyone-pull"]}
    targets = list(WORKLOAD_KEYS[values_key])
    if serve:
        extra["healthCheck"]["mode"] = "serve"
        targets = [("Deployment", "abn-stack-health-check"), ("Job", "abn-stack-health-check-config-check"),
                   ("Pod", "abn-stack-health-check-test")]
    docs = objects("dev", extra=extra)
    for kind, name in targets:
        where = f"{kind}/{name}"
        metadata, spec = pod_of(docs, kind, name)
        is_check = name.endswith("-config-check")
        serving = kind in SERVING_KINDS
        assert spec["priorityClassName"] == f"{values_key}-priority", where
        assert spec["nodeSelector"] == {"example.com/pool": values_key}, where
        assert spec["tolerations"][0]["value"] == values_key, where
        assert spec["affinity"]["nodeAffinity"], where
        assert spec["imagePullSecrets"] == [{"name": "everyone-pull"}, {"name": f"{values_key}-pull"},
                                            {"name": f"{values_key}-pull-2"}], where
        # Spreading is the workload's: its config check is one pod that is not part of it.
        assert ("topologySpreadConstraints" in spec) == (not is_check), where
        assert {"name": "extra", "configMap": {"name": f"{values_key}-files"}} in spec["volumes"], where
        init = spec["initContainers"]
        assert [c["name"] for c in init] == ["init"] and init[0]["args"] == [values_key], where
        # An operator container without a securityContext gets the workload container's.
        assert init[0]["securityContext"] == spec["containers"][0]["securityContext"], where
        names = [c["name"] for c in spec["containers"]]
        # Sidecars only where the pod serves: a run-once pod with one would never complete.
        assert ("shipper" in names) == serving, where
        if serving:
            shipper = next(c for c in spec["containers"] if c["name"] == "shipper")
            assert shipper["securityContext"]["runAsUser"] == 1000, where
        main = spec["containers"][0]
        env = {e["name"]: e for e in main["env"]}
        assert env["EXAMPLE_PLAIN"]["value"] == f"abn-stack-{values_key}", where
        assert env["EXAMPLE_SECRET"]["valueFrom"] == {"secretKeyRef": {"name": f"{values_key}-env", "key": "value"}}, where
        # The chart's own variables come first; extraEnv follows (a later name wins in Kubernetes).
        assert [e["name"] for e in main["env"]][-2:] == ["EXAMPLE_PLAIN", "EXAMPLE_SECRET"], where
        assert main["envFrom"] == [{"configMapRef": {"name": f"{values_key}-settings"}, "prefix": "EXAMPLE_"}], where
        assert {"name": "extra", "mountPath": "/etc/example", "readOnly": True} in main["volumeMounts"], where
        if not is_check and kind != "Pod":
            assert metadata["labels"]["example.com/pod-of"] == values_key, where
            assert metadata["annotations"]["example.com/annotated"] == values_key, where


def test_extra_env_takes_the_map_form_and_the_deprecated_config_extra_env() -> None:
    docs = objects("dev", extra={"backend-api": {"extraEnv": {"B_VAR": "2", "A_VAR": "1"},
                                                 "config": {"extraEnv": {"OLD_VAR": "0"}}}})
    env = one(docs, "Deployment", "abn-stack-backend-api")["spec"]["template"]["spec"]["containers"][0]["env"]
    names = [e["name"] for e in env]
    assert {"name": "OLD_VAR", "value": "0"} in env
    assert names[-2:] == ["A_VAR", "B_VAR"] and {"name": "B_VAR", "value": "2"} in env


def images(docs: list[dict[str, Any]]) -> dict[str, str]:
    return {f"{where}/{c['name']}": c["image"] for where, spec in pod_specs(docs)
            for c in spec.get("initContainers", []) + spec["containers"]}


def test_images_take_a_registry_a_tag_and_a_digest() -> None:
    digest = "sha256:" + "ab" * 32
    default = images(objects("dev"))
    assert set(default.values()) == {f"abn-stack/{n}:0.1.0" for n in ("backend-api", "data-api", "health-check", "log-provider")}
    docs = objects("dev", extra={"global": {"imageRegistry": "registry.example.com"},
                                 "backend-api": {"image": {"digest": digest, "tag": "ignored"}},
                                 "data-api": {"image": {"registry": "mirror.example.com:5000/", "tag": "0.1.0-rc1"}},
                                 "healthCheck": {"image": {"repository": "team/health-check"}}})
    found = images(docs)
    assert found["Deployment/abn-stack-backend-api/backend-api"] == f"registry.example.com/abn-stack/backend-api@{digest}"
    assert found["Job/abn-stack-backend-api-config-check/backend-api"] == f"registry.example.com/abn-stack/backend-api@{digest}"
    assert found["StatefulSet/abn-stack-data-api/data-api"] == "mirror.example.com:5000/abn-stack/data-api:0.1.0-rc1"
    assert found["CronJob/abn-stack-health-check/health-check"] == "registry.example.com/team/health-check:0.1.0"
    assert found["Deployment/abn-stack-log-provider/log-provider"] == "registry.example.com/abn-stack/log-provider:0.1.0"
    # By digest, checkov's CKV_K8S_43 needs no exception; by tag it keeps its reason.
    backend = one(docs, "Deployment", "abn-stack-backend-api")["metadata"]["annotations"]
    assert "checkov.io/skip1" not in backend
    assert one(docs, "StatefulSet", "abn-stack-data-api")["metadata"]["annotations"]["checkov.io/skip1"].startswith("CKV_K8S_43=")


def test_common_labels_and_annotations_reach_every_object() -> None:
    extra = {"global": {"commonLabels": {"example.com/team": "platform", "example.com/cost": "global"},
                        "commonAnnotations": {"example.com/owner": "platform", "helm.sh/hook": "never-wins"}},
             "commonLabels": {"example.com/cost": "umbrella"},
             "backend-api": {"commonLabels": {"example.com/cost": "backend"}, "commonAnnotations": {"example.com/owner": "api-team"}}}
    docs = objects("dev", extra=extra)
    base = {(d["kind"], d["metadata"]["name"]): d for d in objects("dev")}
    for doc in docs:
        where = f"{doc['kind']}/{doc['metadata']['name']}"
        labels, annotations = doc["metadata"]["labels"], doc["metadata"]["annotations"]
        assert labels["example.com/team"] == "platform", where
        assert "example.com/owner" in annotations, where
        expected_cost = "backend" if labels["helm.sh/chart"].startswith("backend-api-") else \
            "global" if labels["helm.sh/chart"].startswith("data-api-") else "umbrella"
        assert labels["example.com/cost"] == expected_cost, where
        # An object's own annotations win (hooks stay hooks); selectors never change.
        own = base[(doc["kind"], doc["metadata"]["name"])]["metadata"].get("annotations", {})
        assert {k: annotations[k] for k in own} == own, where
        if "selector" in doc.get("spec", {}) and doc["kind"] != "Service":
            assert doc["spec"]["selector"] == base[(doc["kind"], doc["metadata"]["name"])]["spec"]["selector"], where
    assert one(docs, "Deployment", "abn-stack-backend-api")["metadata"]["annotations"]["example.com/owner"] == "api-team"
    pod_labels = one(docs, "StatefulSet", "abn-stack-data-api")["spec"]["template"]["metadata"]["labels"]
    assert pod_labels["example.com/team"] == "platform"


INGRESS = {"enabled": True, "className": "nginx",
           "annotations": {"cert-manager.io/cluster-issuer": "letsencrypt"},
           "hosts": [{"host": "api.example.com", "paths": [{"path": "/", "pathType": "Prefix"}]},
                     {"host": "{{ .Release.Name }}.example.com"}],
           "tls": [{"secretName": "api-tls", "hosts": ["api.example.com"]}]}
CONTROLLER = [{"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "ingress-nginx"}}}]
CALLERS = [{"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "callers"}}}]


def backend_ingress_peers(docs: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return one(docs, "NetworkPolicy", "abn-stack-backend-api")["spec"]["ingress"][0]["from"]


def test_ingress_routes_to_the_service_and_the_policy_admits_the_controller() -> None:
    docs = objects("prod", extra={"backend-api": {"ingress": INGRESS}, "networkPolicy": {"apiIngressFrom": CALLERS}})
    ingress = one(docs, "Ingress", "abn-stack-backend-api")
    spec = ingress["spec"]
    assert spec["ingressClassName"] == "nginx" and spec["tls"] == INGRESS["tls"]
    assert ingress["metadata"]["annotations"]["cert-manager.io/cluster-issuer"] == "letsencrypt"
    assert [r["host"] for r in spec["rules"]] == ["api.example.com", "abn-stack.example.com"]
    service = one(docs, "Service", "abn-stack-backend-api")
    for rule in spec["rules"]:
        path = rule["http"]["paths"][0]
        assert path["path"] == "/" and path["pathType"] == "Prefix"
        assert path["backend"]["service"] == {"name": service["metadata"]["name"], "port": {"name": "http"}}
    assert service["spec"]["ports"][0]["name"] == "http"
    peers = backend_ingress_peers(docs)
    assert peers[0] == CALLERS[0] and CONTROLLER[0] in peers
    # Off: no Ingress, and the restricted policy does not admit the controller.
    plain = objects("prod", extra={"networkPolicy": {"apiIngressFrom": CALLERS}})
    assert not by_kind(plain, "Ingress") and CONTROLLER[0] not in backend_ingress_peers(plain)


def test_http_route_attaches_to_the_gateway_and_routes_to_the_service() -> None:
    """Checked here: the fields the chart writes (parentRefs, hostnames, the backendRef naming the
    Service and its port). Not checked: the HTTPRoute against the Gateway API's CRD schema, which
    kubernetes-validate does not ship and no package registry reachable here provides (README:
    "Gateway API")."""
    route = {"enabled": True, "parentRefs": [{"name": "shared", "namespace": "gateways", "sectionName": "https"}],
             "hostnames": ["api.example.com"], "matches": [{"path": {"type": "PathPrefix", "value": "/api_1"}}]}
    gateway = [{"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "gateways"}}}]
    docs = objects("prod", extra={"backend-api": {"httpRoute": route},
                                  "networkPolicy": {"apiIngressFrom": CALLERS, "ingressControllerFrom": gateway}})
    found = one(docs, "HTTPRoute", "abn-stack-backend-api")
    assert found["apiVersion"] == "gateway.networking.k8s.io/v1"
    spec = found["spec"]
    assert spec["parentRefs"] == route["parentRefs"] and spec["hostnames"] == route["hostnames"]
    service = one(docs, "Service", "abn-stack-backend-api")
    assert spec["rules"] == [{"backendRefs": [{"name": service["metadata"]["name"], "port": service["spec"]["ports"][0]["port"]}],
                              "matches": route["matches"]}]
    assert gateway[0] in backend_ingress_peers(docs)


def test_hpa_behavior_and_an_extra_metric() -> None:
    prod = one(objects("prod"), "HorizontalPodAutoscaler", "abn-stack-backend-api")["spec"]
    assert prod["behavior"]["scaleDown"]["stabilizationWindowSeconds"] >= 300
    # extraMetrics unset: CPU only.
    assert [m["resource"]["name"] for m in prod["metrics"]] == ["cpu"]
    assert "behavior" not in one(objects("dev", extra={"backend-api": {"autoscaling": {"enabled": True}}}),
                                 "HorizontalPodAutoscaler", "abn-stack-backend-api")["spec"]
    rps = {"type": "Pods", "pods": {"metric": {"name": "http_requests_per_second"},
                                    "target": {"type": "AverageValue", "averageValue": "20"}}}
    spec = one(objects("prod", extra={"backend-api": {"autoscaling": {"extraMetrics": [rps]}}}),
               "HorizontalPodAutoscaler", "abn-stack-backend-api")["spec"]
    assert spec["metrics"][0]["resource"]["name"] == "cpu" and spec["metrics"][1] == rps


@pytest.mark.parametrize("values_yaml, key", [
    ("backend-api:\n  extraVolume: []\n", "extraVolume"),
    ("backend-api:\n  image:\n    digets: sha256:00\n", "digets"),
    ("backend-api:\n  image:\n    digest: latest\n", "digest"),
    ("backend-api:\n  extraEnv:\n    - name: A\n      valueform: {}\n", "valueform"),
    ("backend-api:\n  ingress:\n    hots: []\n", "hots"),
    ("backend-api:\n  ingress:\n    enabled: true\n", "hosts"),
    ("backend-api:\n  httpRoute:\n    parentRef: []\n", "parentRef"),
    ("backend-api:\n  autoscaling:\n    behaviour: {}\n", "behaviour"),
    ("data-api:\n  extraContainer: []\n", "extraContainer"),
    ("healthCheck:\n  initContainer: []\n", "initContainer"),
    ("logProvider:\n  extraEnvfrom: []\n", "extraEnvfrom"),
    ("global:\n  imageRegistery: registry.example.com\n", "imageRegistery"),
    ("commonLabel: {}\n", "commonLabel"),
])
def test_schema_refuses_a_misspelled_new_key(values_yaml: str, key: str, tmp_path) -> None:
    assert key in render_error("dev", values_yaml, tmp_path)


def test_the_extensions_fixture_renders_what_the_rehearsal_runs() -> None:
    """values/extensions.yaml: the CA bundle mounted and named by SSL_CERT_FILE, HTTPS_PROXY from
    the operator's Secret, backend-api by digest, the status sidecar; as a kubelet resolves them."""
    docs = objects("dev", extra=extensions.values())
    deployment = one(docs, "Deployment", "abn-stack-backend-api")
    workload = next(w for w in podspec.workloads(docs) if w.kind == "Deployment" and w.name == "abn-stack-backend-api")
    main, sidecar = workload.pod_spec["containers"]
    assert main["image"].startswith("abn-stack/backend-api@sha256:") and sidecar["name"] == "status"
    cluster = podspec.Cluster(docs + extensions.operator_objects("abn-stack-dev"), podspec.operator_secrets(docs))
    env = podspec.container_env(main, pod_name="p", namespace="abn-stack-dev", cluster=cluster)
    assert env["HTTPS_PROXY"] == extensions.PROXY_URL
    files = podspec.projected_files(workload.pod_spec, main, cluster, "backend-api")
    mount, name = env["SSL_CERT_FILE"].rsplit("/", 1)
    assert files[mount][name] == extensions.CA_BUNDLE.read_text()
    assert selects({"matchLabels": deployment["spec"]["selector"]["matchLabels"]}, deployment["spec"]["template"]["metadata"]["labels"])
    # The operator chose a Secret in the environment: checkov's CKV_K8S_35 gets its reason there only.
    assert deployment["metadata"]["annotations"]["checkov.io/skip3"].startswith("CKV_K8S_35=extraEnv")
    assert "checkov.io/skip3" not in one(objects("dev"), "Deployment", "abn-stack-backend-api")["metadata"]["annotations"]
