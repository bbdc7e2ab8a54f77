"""The render diff (renderdiff.py) over real renders of the working tree's umbrella chart with the
dev values: each values change Kubernetes refuses in place is found, with its manual step, and a
change it accepts (an image tag, a replica count) is not. No Docker engine needed."""

from __future__ import annotations

import copy

import pytest

import render
import renderdiff
import sources


@pytest.fixture(scope="module")
def dev() -> list[dict]:
    render.build_dependencies(render.UMBRELLA)
    return sources.release_objects("dev")


def diff(dev: list[dict], extra: dict) -> list[renderdiff.Finding]:
    return renderdiff.refused_changes(dev, sources.release_objects("dev", extra))


def test_the_same_release_or_an_accepted_change_has_no_finding(dev: list[dict]) -> None:
    assert renderdiff.refused_changes(dev, copy.deepcopy(dev)) == []
    assert diff(dev, {"backend-api": {"image": {"tag": "9.9.9"}, "replicaCount": 3}, "data-api": {"replicaCount": 2}}) == []


@pytest.mark.parametrize("persistence, detail", [
    ({"size": "512Mi"}, "size 256Mi -> 512Mi"),
    ({"storageClass": "fast"}, "storageClassName None -> fast"),
    ({"accessModes": ["ReadWriteOncePod"]}, "accessModes ['ReadWriteOnce'] -> ['ReadWriteOncePod']"),
])
def test_a_claim_template_change_needs_the_orphan_delete(dev: list[dict], persistence: dict, detail: str) -> None:
    findings = diff(dev, {"data-api": {"persistence": persistence}})
    assert [f.where for f in findings] == ["StatefulSet/abn-stack-data-api"], findings
    assert detail in findings[0].what, findings[0]
    assert "kubectl -n abn-stack-dev delete statefulset abn-stack-data-api --cascade=orphan" in findings[0].step


def test_shared_mode_moves_the_records_to_a_new_claim(dev: list[dict]) -> None:
    findings = diff(dev, {"data-api": {"persistence": {"shared": {"enabled": True}}}})
    assert [f.where for f in findings] == ["StatefulSet/abn-stack-data-api"], findings
    assert "shared claim" in findings[0].what and "backup" in findings[0].step and "--cascade=orphan" in findings[0].step


def test_health_check_mode_change_is_a_kind_change(dev: list[dict]) -> None:
    findings = diff(dev, {"healthCheck": {"mode": "serve"}})
    assert [f.where for f in findings] == ["Deployment/abn-stack-health-check"], findings
    assert "CronJob -> Deployment" in findings[0].what
    assert "kubectl -n abn-stack-dev patch cronjob abn-stack-health-check" in findings[0].step
    back = renderdiff.refused_changes(sources.release_objects("dev", {"healthCheck": {"mode": "serve"}}), dev)
    assert [f.what.split(" (")[0] for f in back] == ["health-check changes kind Deployment -> CronJob"], back


def test_a_selector_change_is_found(dev: list[dict]) -> None:
    """No value changes a selector today (they are the name and instance labels); a chart change
    that did would be caught: the same render with one more selector label."""
    changed = copy.deepcopy(dev)
    for obj in changed:
        if obj["kind"] in ("Deployment", "StatefulSet"):
            obj["spec"]["selector"]["matchLabels"]["tier"] = "api"
    findings = renderdiff.refused_changes(dev, changed)
    assert sorted(f.where for f in findings) == sorted(
        f"{o['kind']}/{o['metadata']['name']}" for o in dev if o["kind"] in ("Deployment", "StatefulSet")), findings
    assert all("spec.selector changed" in f.what for f in findings), findings


def test_a_standalone_claim_shrinking_or_changing_class_is_found(dev: list[dict]) -> None:
    findings = diff(dev, {"healthCheck": {"persistence": {"size": "16Mi", "storageClass": "slow"}}})
    whats = sorted(f.what.split(" (")[0].split(":")[0] for f in findings)
    assert whats == ["spec.storageClassName changed", "storage request shrinks"], findings
