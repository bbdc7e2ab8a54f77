"""healthCheck.alerting: the direct path's config rendered as a ConfigMap (HEALTHCHECK_CONFIG),
each receiver's URL mounted from the operator's Secret and named by `url_file`, in both modes, and
checked by the real health-check binary's --check-config."""

from __future__ import annotations

import base64
from pathlib import Path
from typing import Any

import pytest
import yaml

from conftest import ENVS, NAMESPACES, objects
from test_check_config import check_release
from test_render import by_kind, one, render_error

VALUES = yaml.safe_load((Path(__file__).parent / "values" / "alerting.yaml").read_text())
#: What the operator's Secrets hold; a URL's path is its credential and must stay in the Secret.
URLS = {("ops-webhook", "url"): "https://hooks.example.test/ops/s3cr3t-path",
        ("chat-webhook", "slack-url"): "https://hooks.slack.example.test/services/T0/B0/s3cr3t"}
MODES = ("cronjob", "serve")


def alerting(mode: str, **changes: Any) -> dict[str, Any]:
    values = {**VALUES["healthCheck"]["alerting"], **changes}
    return {"healthCheck": {"mode": mode, "alerting": values}}


def operator_secrets(namespace: str, urls: dict[tuple[str, str], str] = URLS) -> list[dict[str, Any]]:
    """The Secrets `kubectl create secret generic` would have made before the install."""
    by_name: dict[str, dict[str, str]] = {}
    for (name, key), url in urls.items():
        by_name.setdefault(name, {})[key] = base64.b64encode(url.encode()).decode()
    return [{"apiVersion": "v1", "kind": "Secret", "metadata": {"name": name, "namespace": namespace},
             "type": "Opaque", "data": data} for name, data in by_name.items()]


def health_check_pods(docs: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """{kind: pod spec} of the health-check's own workload, its config-check Job and test Pod."""
    pods = {}
    for doc in docs:
        name = doc["metadata"]["name"]
        if doc["kind"] == "CronJob":
            pods["CronJob"] = doc["spec"]["jobTemplate"]["spec"]["template"]["spec"]
        elif doc["kind"] == "Deployment" and name.endswith("-health-check"):
            pods["Deployment"] = doc["spec"]["template"]["spec"]
        elif doc["kind"] == "Job" and name.endswith("-health-check-config-check"):
            pods["Job"] = doc["spec"]["template"]["spec"]
        elif doc["kind"] == "Pod":
            pods["Pod"] = doc["spec"]
    return pods


def env_of(pod: dict[str, Any]) -> dict[str, str]:
    return {e["name"]: e.get("value") for e in pod["containers"][0].get("env") or []}


def file_source(pod: dict[str, Any], path: str) -> tuple[str, str, str]:
    """Which volume a path in the container comes from: (kind, object name, key)."""
    volumes = {v["name"]: v for v in pod["volumes"]}
    for mount in pod["containers"][0]["volumeMounts"]:
        prefix = mount["mountPath"].rstrip("/") + "/"
        if path.startswith(prefix):
            volume = volumes[mount["name"]]
            relative = path[len(prefix):]
            if "secret" in volume:
                item = next(i for i in volume["secret"]["items"] if i["path"] == relative)
                return "Secret", volume["secret"]["secretName"], item["key"]
            return "ConfigMap", volume["configMap"]["name"], relative
    raise AssertionError(f"{path} is on no mount of {pod['containers'][0]['volumeMounts']}")


@pytest.mark.parametrize("env", ENVS)
def test_unset_renders_no_alerting(env: str) -> None:
    for mode in MODES:
        docs = objects(env, extra={"healthCheck": {"mode": mode}})
        assert not [d for d in by_kind(docs, "ConfigMap") if "-alerting" in d["metadata"]["name"]]
        for kind, pod in health_check_pods(docs).items():
            assert "HEALTHCHECK_CONFIG" not in env_of(pod), kind
            assert not [v for v in pod.get("volumes") or [] if v["name"].startswith("alerting")], kind
        policy = one(docs, "NetworkPolicy", "abn-stack-health-check")["spec"]
        assert not [rule for rule in policy["egress"] if any("ipBlock" in peer for peer in rule["to"])]


@pytest.mark.parametrize("mode", MODES)
def test_set_renders_the_config_and_mounts_each_url_from_its_secret(mode: str) -> None:
    docs = objects("prod", extra=alerting(mode))
    config_map = one(docs, "ConfigMap", "abn-stack-health-check-alerting")
    config = yaml.safe_load(config_map["data"]["config.yaml"])
    # Only what the operator set; the binary owns attempts, attempt_timeout and up_after.
    assert config["targets"] == []
    assert {k: v for k, v in config["alerting"].items() if k != "receivers"} == {
        "down_after": 3, "delivery": {"give_up_after": "20s"}}
    assert [(r["name"], r["type"]) for r in config["alerting"]["receivers"]] == [("ops", "webhook"), ("chat", "slack")]
    # No URL in the ConfigMap: they are secrets.
    assert "http" not in config_map["data"]["config.yaml"]
    pods = health_check_pods(docs)
    workload = "CronJob" if mode == "cronjob" else "Deployment"
    assert set(pods) == {workload, "Job", "Pod"}
    # The config-check Job, a pre-install/pre-upgrade hook, runs before Helm makes or updates the
    # release's ConfigMap: it reads a hook copy of the same config, made just before it.
    check_copy = one(docs, "ConfigMap", "abn-stack-health-check-alerting-check")
    assert check_copy["data"] == config_map["data"]
    assert check_copy["metadata"]["annotations"]["helm.sh/hook"] == "pre-install,pre-upgrade"
    assert int(check_copy["metadata"]["annotations"]["helm.sh/hook-weight"]) < 0
    assert "helm.sh/hook" not in (config_map["metadata"].get("annotations") or {})
    for kind, source in ((workload, config_map), ("Job", check_copy)):
        pod = pods[kind]
        path = env_of(pod)["HEALTHCHECK_CONFIG"]
        assert file_source(pod, path) == ("ConfigMap", source["metadata"]["name"], "config.yaml"), kind
        for receiver, (secret, key) in zip(config["alerting"]["receivers"], URLS):
            assert file_source(pod, receiver["url_file"]) == ("Secret", secret, key), kind
        assert all(m["readOnly"] for m in pod["containers"][0]["volumeMounts"] if m["name"].startswith("alerting")), kind
    # The helm test pod writes no history (--output -), which alerting needs: it gets none.
    assert "HEALTHCHECK_CONFIG" not in env_of(pods["Pod"])
    # The workload's arguments and the check's agree (the check adds --check-config only).
    assert pods["Job"]["containers"][0]["args"] == [*pods[workload]["containers"][0]["args"], "--check-config"]


@pytest.mark.parametrize("mode", MODES)
def test_a_config_change_rolls_the_pods(mode: str) -> None:
    def template_annotations(extra: dict[str, Any]) -> dict[str, str]:
        docs = objects("prod", extra=extra)
        if mode == "cronjob":
            return one(docs, "CronJob", "abn-stack-health-check")["spec"]["jobTemplate"]["spec"]["template"]["metadata"]["annotations"]
        return one(docs, "Deployment", "abn-stack-health-check")["spec"]["template"]["metadata"]["annotations"]

    base = template_annotations(alerting(mode))["checksum/alerting-config"]
    assert template_annotations(alerting(mode, downAfter=5))["checksum/alerting-config"] != base


def test_receivers_egress_is_allowed_only_where_the_operator_said() -> None:
    policy = one(objects("prod", extra=alerting("serve")), "NetworkPolicy", "abn-stack-health-check")["spec"]
    assert {"to": [{"ipBlock": {"cidr": "10.9.0.0/16"}}], "ports": [{"port": 443, "protocol": "TCP"}]} in policy["egress"]


@pytest.mark.parametrize("mode", MODES)
def test_every_container_passes_the_binarys_check_with_alerting(mode: str) -> None:
    docs = objects("prod", extra=alerting(mode)) + operator_secrets(NAMESPACES["prod"])
    passed, failed = check_release(docs)
    assert not failed, "\n".join(failed)
    checked = [e for e in passed if " container health-check:" in e]
    assert len(checked) == 3, passed  # the workload, its config-check Job, the helm test Pod


def test_a_receiver_secret_without_a_url_fails_the_check_without_quoting_it() -> None:
    wrong = {**URLS, ("ops-webhook", "url"): "not-a-url-s3cr3t"}
    docs = objects("prod", extra=alerting("serve")) + operator_secrets(NAMESPACES["prod"], wrong)
    _, failed = check_release(docs)
    assert {e.split()[0] for e in failed} == {"Deployment", "Job"}, failed
    for entry in failed:
        assert "HEALTHCHECK_CONFIG" in entry and "ops" in entry and "s3cr3t" not in entry, entry


@pytest.mark.parametrize(("values_yaml", "word"), [
    ("healthCheck:\n  alerting:\n    receivers: []\n    downAftr: 2\n", "downAftr"),
    ("healthCheck:\n  alerting:\n    receivers:\n      - {name: ops, type: email, urlSecret: {name: s, key: k}}\n", "type"),
    ("healthCheck:\n  alerting:\n    receivers:\n      - {name: ops, type: webhook, url: 'https://h/x'}\n", "url"),
    ("healthCheck:\n  alerting:\n    delivery: {giveUpAfter: soon}\n", "giveUpAfter"),
])
def test_schema_refuses_wrong_alerting_values(values_yaml: str, word: str, tmp_path) -> None:
    assert word in render_error("prod", values_yaml, tmp_path)


def test_two_receivers_of_one_name_fail_the_render() -> None:
    twice = [{"name": "ops", "type": "webhook", "urlSecret": {"name": "a", "key": "url"}},
             {"name": "ops", "type": "slack", "urlSecret": {"name": "b", "key": "url"}}]
    with pytest.raises(Exception, match="used twice"):
        objects("prod", extra=alerting("serve", receivers=twice))
