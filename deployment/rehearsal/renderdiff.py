"""The render diff between two releases: the changes `helm upgrade` cannot apply in place, because
the API server refuses them on an existing object (a StatefulSet's volumeClaimTemplates, a
workload's selector, a claim's class or access modes) or because they replace one workload by
another of another kind for the same component (health-check CronJob <-> Deployment when
healthCheck.mode changes) or move data-api's records to another claim (persistence.shared). Each
finding carries the manual step the chart READMEs and NOTES.txt document.

    build/charts-venv/bin/python deployment/rehearsal/renderdiff.py OLD.yaml NEW.yaml

(two `helm template` outputs; exit 1 with the findings when there is one.)
"""

from __future__ import annotations

import dataclasses
import sys
from pathlib import Path
from typing import Any

import yaml

WORKLOAD_KINDS = ("Deployment", "StatefulSet", "CronJob", "DaemonSet")
#: StatefulSet fields the API server refuses to change ("updates to statefulset spec for fields
#: other than 'replicas', 'ordinals', 'template', 'updateStrategy', 'persistentVolumeClaimRetentionPolicy'
#: and 'minReadySeconds' are forbidden").
STATEFULSET_FIXED = ("volumeClaimTemplates", "selector", "serviceName", "podManagementPolicy")


@dataclasses.dataclass(frozen=True)
class Finding:
    where: str
    what: str
    step: str

    def __str__(self) -> str:
        return f"{self.where}: {self.what}\n    manual step: {self.step}"


def _key(obj: dict[str, Any]) -> tuple[str, str, str]:
    meta = obj["metadata"]
    return obj["kind"], meta.get("namespace", ""), meta["name"]


def _is_hook(obj: dict[str, Any]) -> bool:
    # Hooks are created anew by every upgrade (hook-delete-policy), never patched.
    return "helm.sh/hook" in (obj["metadata"].get("annotations") or {})


def _component(obj: dict[str, Any]) -> tuple[str, str] | None:
    labels = obj["metadata"].get("labels") or {}
    name = labels.get("app.kubernetes.io/name")
    return (name, labels.get("app.kubernetes.io/instance", "")) if name else None


def _claims(template: dict[str, Any]) -> list[dict[str, Any]]:
    """volumeClaimTemplates as the API server compares them: name and spec (size, class, modes)."""
    return [{"name": t["metadata"]["name"], "spec": t.get("spec")} for t in template.get("volumeClaimTemplates") or []]


def _size(claim_spec: dict[str, Any]) -> str | None:
    return ((claim_spec.get("resources") or {}).get("requests") or {}).get("storage")


def refused_changes(old: list[dict[str, Any]], new: list[dict[str, Any]]) -> list[Finding]:
    """What `helm upgrade` from the release `old` to `new` cannot apply in place."""
    old_objects = {_key(o): o for o in old if not _is_hook(o)}
    new_objects = {_key(o): o for o in new if not _is_hook(o)}
    findings: list[Finding] = []
    for key in sorted(old_objects.keys() & new_objects.keys()):
        kind, namespace, name = key
        before, after = old_objects[key].get("spec") or {}, new_objects[key].get("spec") or {}
        where = f"{kind}/{name}"
        ns = f"-n {namespace} " if namespace else ""
        if kind == "StatefulSet":
            if _claims(before) != _claims(after):
                shared = not after.get("volumeClaimTemplates") and before.get("volumeClaimTemplates")
                if shared:
                    findings.append(Finding(where, "volumeClaimTemplates removed: the pods move from their own claims to one "
                                            "shared claim (data-api persistence.shared), which starts empty",
                                            f"copy every record to the shared claim first (data-api backup from each "
                                            f"pod's claim, restore into the shared one), then `kubectl {ns}delete statefulset "
                                            f"{name} --cascade=orphan` and `helm upgrade`; the old claims stay until deleted"))
                else:
                    findings.append(Finding(where, f"volumeClaimTemplates changed ({_describe_claims(before, after)}): "
                                            "the API server refuses it on an existing StatefulSet",
                                            f"`kubectl {ns}delete statefulset {name} --cascade=orphan` (the pods and their "
                                            "claims stay), then `helm upgrade`; existing claims keep their size and class: "
                                            "grow each with `kubectl patch pvc <claim> -p '{\"spec\":{\"resources\":{\"requests\":"
                                            "{\"storage\":\"<size>\"}}}}'` where the class allows expansion; a new class or access "
                                            "mode needs new claims and a copy of the records (backup, restore)"))
            for field in STATEFULSET_FIXED[1:]:
                if before.get(field) != after.get(field):
                    findings.append(Finding(where, f"spec.{field} changed: the API server refuses it on an existing StatefulSet",
                                            f"`kubectl {ns}delete statefulset {name} --cascade=orphan` (pods and claims "
                                            "stay), then `helm upgrade`; then delete the old pods one at a time so the new "
                                            "StatefulSet starts them"))
        elif kind in ("Deployment", "DaemonSet") and before.get("selector") != after.get("selector"):
            findings.append(Finding(where, "spec.selector changed: the API server refuses it on an existing " + kind,
                                    f"`kubectl {ns}delete {kind.lower()} {name}` (its pods stop), then `helm upgrade`"))
        elif kind == "PersistentVolumeClaim":
            for field in ("storageClassName", "accessModes", "volumeMode"):
                if before.get(field) != after.get(field):
                    findings.append(Finding(where, f"spec.{field} changed ({before.get(field)} -> {after.get(field)}): "
                                            "a bound claim cannot change it",
                                            "create a claim with the new spec, copy the data, point the chart at it "
                                            "(existingClaim), then `helm upgrade`"))
            if _size(before) and _size(after) and _quantity(_size(after)) < _quantity(_size(before)):
                findings.append(Finding(where, f"storage request shrinks ({_size(before)} -> {_size(after)}): a claim never "
                                        "shrinks", "keep the size, or a new claim and a copy of the data"))
    findings += _kind_changes(old_objects.values(), new_objects.values())
    return findings


def _kind_changes(old: Any, new: Any) -> list[Finding]:
    """A component whose workload kind differs between the releases: Helm deletes the one and
    creates the other, so the two never run together only if nothing of the old one runs."""
    def kinds(objects: Any) -> dict[tuple[str, str], dict[str, str]]:
        found: dict[tuple[str, str], dict[str, str]] = {}
        for obj in objects:
            component = _component(obj)
            if obj["kind"] in WORKLOAD_KINDS and component:
                found.setdefault(component, {})[obj["kind"]] = obj["metadata"]["name"]
        return found

    before, after = kinds(old), kinds(new)
    namespaces = {obj["metadata"].get("namespace") for obj in new if obj["metadata"].get("namespace")}
    ns = f"-n {sorted(namespaces)[0]} " if namespaces else ""
    findings = []
    for component in sorted(before.keys() & after.keys()):
        gone, added = set(before[component]) - set(after[component]), set(after[component]) - set(before[component])
        if gone and added:
            old_kind, new_kind = sorted(gone)[0], sorted(added)[0]
            name = after[component][new_kind]
            first = (f"first suspend the CronJob (`kubectl {ns}patch cronjob {before[component][old_kind]} -p "
                     "'{\"spec\":{\"suspend\":true}}'`) so no Job writes the ReadWriteOnce history claim while the "
                     "new pod starts") if old_kind == "CronJob" else \
                f"first `kubectl {ns}scale {old_kind.lower()} {before[component][old_kind]} --replicas=0` (it holds the claim)"
            findings.append(Finding(f"{new_kind}/{name}", f"{component[0]} changes kind {old_kind} -> {new_kind} "
                                    "(healthCheck.mode): Helm deletes the one workload and creates the other",
                                    f"{first}, then `helm upgrade`; the claim is kept (helm.sh/resource-policy=keep)"))
    return findings


def _describe_claims(before: dict[str, Any], after: dict[str, Any]) -> str:
    old = {c["name"]: c["spec"] or {} for c in _claims(before)}
    new = {c["name"]: c["spec"] or {} for c in _claims(after)}
    parts = []
    for name in sorted(old.keys() | new.keys()):
        a, b = old.get(name), new.get(name)
        if a is None or b is None:
            parts.append(f"{name} {'added' if a is None else 'removed'}")
            continue
        for field, value in (("size", _size), ("storageClassName", lambda s: s.get("storageClassName")),
                             ("accessModes", lambda s: s.get("accessModes"))):
            if value(a) != value(b):
                parts.append(f"{name} {field} {value(a)} -> {value(b)}")
        if not parts:
            parts.append(f"{name} spec")
    return ", ".join(parts)


def _quantity(text: str) -> float:
    units = {"Ki": 2**10, "Mi": 2**20, "Gi": 2**30, "Ti": 2**40, "k": 1e3, "M": 1e6, "G": 1e9, "T": 1e12}
    for unit, factor in units.items():
        if text.endswith(unit):
            return float(text[: -len(unit)]) * factor
    return float(text)


def main(argv: list[str]) -> int:
    old, new = ([d for d in yaml.safe_load_all(Path(p).read_text()) if d] for p in argv[1:3])
    findings = refused_changes(old, new)
    for finding in findings:
        print(finding)
    return 1 if findings else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
