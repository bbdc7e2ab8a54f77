"""What a kubelet makes of the rendered charts: the pods each workload runs and, per container, the
environment, arguments and files it gets. Pure Python, no engine: the chart checks use it to hand
each container's exact environment to the binary's --check-config, and the deploy rehearsal
(deployment/rehearsal) uses it to start the same containers on the Docker engine.

Kubernetes behaviour reproduced here, where it matters for these charts:
- env: `envFrom` first (ConfigMaps, Secrets, with `prefix`), then `env` in order; a later name
  wins; `value`, `configMapKeyRef`, `secretKeyRef`, `fieldRef` (metadata.name, metadata.namespace,
  and a few status fields); `$(VAR)` in env values, `command` and `args` expands to a variable
  defined earlier, `$$` is a literal `$`, an unknown `$(VAR)` stays as written.
- The Secrets and ConfigMaps a pod's env and volumes read (`Cluster`); the volumes' files
  themselves are written by the rehearsal's kubelet (deployment/rehearsal/kubelet.py).
- A pod-spec field this module (or the rehearsal) does not implement raises Unsupported naming the
  field, so the charts cannot grow past what is checked without anyone noticing.
"""

from __future__ import annotations

import base64
import dataclasses
import re
import secrets
from typing import Any, Iterable

#: Kinds whose pod template the rehearsal runs.
WORKLOAD_KINDS = ("Deployment", "StatefulSet", "CronJob", "Job", "Pod")


class Unsupported(Exception):
    """A field of a rendered object that the rehearsal does not reproduce."""

    def __init__(self, where: str, field: str):
        super().__init__(f"{where}: {field} is not implemented by the deploy rehearsal")
        self.where = where
        self.field = field


@dataclasses.dataclass
class Workload:
    """One rendered object that runs pods."""

    kind: str
    name: str
    namespace: str
    pod_spec: dict[str, Any]
    pod_labels: dict[str, str]
    replicas: int
    #: Helm hook phases ("pre-install", "test", ...), empty for release resources.
    hooks: tuple[str, ...]
    hook_weight: int
    claim_templates: list[dict[str, Any]]

    @property
    def runs_to_completion(self) -> bool:
        """Jobs, CronJob runs and test pods exit; Deployments and StatefulSets serve."""
        return self.kind in ("CronJob", "Job", "Pod")

    def pod_names(self) -> list[str]:
        """Names the pods get: <sts>-<ordinal>, or a generated suffix like the controllers'."""
        if self.kind == "StatefulSet":
            return [f"{self.name}-{i}" for i in range(self.replicas)]
        if self.kind == "Pod":
            return [self.name]
        return [f"{self.name}-{secrets.token_hex(3)}" for _ in range(self.replicas)]


def hooks_of(obj: dict[str, Any]) -> tuple[tuple[str, ...], int]:
    """An object's Helm hook phases (empty for a release resource) and weight."""
    annotations = obj["metadata"].get("annotations") or {}
    hooks = tuple(h.strip() for h in annotations.get("helm.sh/hook", "").split(",") if h.strip())
    return hooks, int(annotations.get("helm.sh/hook-weight", "0"))


def hook_delete_policies(obj: dict[str, Any]) -> tuple[str, ...]:
    """A hook's helm.sh/hook-delete-policy; unset, Helm's default: before-hook-creation."""
    annotations = obj["metadata"].get("annotations") or {}
    policies = tuple(p.strip() for p in annotations.get("helm.sh/hook-delete-policy", "").split(",") if p.strip())
    return policies or ("before-hook-creation",)


def workloads(objects: Iterable[dict[str, Any]], *, hpa_min: bool = True) -> list[Workload]:
    """Every object that runs pods, with its pod template. `replicas` follows the object, or an
    HPA's minReplicas when one targets it (a cluster at rest runs the minimum)."""
    objects = list(objects)
    hpa_min_replicas = {
        o["spec"]["scaleTargetRef"]["name"]: o["spec"].get("minReplicas", 1)
        for o in objects
        if o["kind"] == "HorizontalPodAutoscaler"
    }
    found = []
    for obj in objects:
        kind = obj["kind"]
        if kind not in WORKLOAD_KINDS:
            continue
        meta = obj["metadata"]
        spec = obj.get("spec") or {}
        hooks, weight = hooks_of(obj)
        claim_templates: list[dict[str, Any]] = []
        if kind == "Pod":
            template = {"metadata": meta, "spec": spec}
            replicas = 1
        elif kind == "CronJob":
            template = spec["jobTemplate"]["spec"]["template"]
            replicas = 1
        elif kind == "Job":
            template = spec["template"]
            replicas = spec.get("parallelism", 1)
        else:
            template = spec["template"]
            replicas = spec.get("replicas", 1)
            if hpa_min and meta["name"] in hpa_min_replicas:
                replicas = hpa_min_replicas[meta["name"]]
            claim_templates = spec.get("volumeClaimTemplates", [])
        found.append(
            Workload(
                kind=kind,
                name=meta["name"],
                namespace=meta.get("namespace", "default"),
                pod_spec=template["spec"],
                pod_labels=(template.get("metadata") or {}).get("labels") or {},
                replicas=replicas,
                hooks=hooks,
                hook_weight=weight,
                claim_templates=claim_templates,
            )
        )
    return found


class Cluster:
    """The ConfigMaps and Secrets a render creates, plus Secrets the operator made beforehand
    (`existing_secrets`: {name: {key: value}}), as a kubelet would look them up. The deploy
    rehearsal starts from the operator's alone and applies the render's objects when Helm would
    create them (`apply`, `delete`: hooks in their phase, the release's own at install)."""

    def __init__(self, objects: Iterable[dict[str, Any]], existing_secrets: dict[str, dict[str, str]] | None = None):
        self.config_maps: dict[str, dict[str, str]] = {}
        self.secrets: dict[str, dict[str, str]] = dict(existing_secrets or {})
        for obj in objects:
            self.apply(obj)

    def apply(self, obj: dict[str, Any]) -> bool:
        """Creates or replaces a ConfigMap or Secret; other kinds hold nothing a pod reads here
        (False)."""
        name = obj["metadata"]["name"]
        if obj["kind"] == "ConfigMap":
            self.config_maps[name] = {k: str(v) for k, v in (obj.get("data") or {}).items()}
        elif obj["kind"] == "Secret":
            data = {k: base64.b64decode(v).decode() for k, v in (obj.get("data") or {}).items()}
            data.update({k: str(v) for k, v in (obj.get("stringData") or {}).items()})
            self.secrets[name] = data
        else:
            return False
        return True

    def delete(self, obj: dict[str, Any]) -> None:
        source = self.config_maps if obj["kind"] == "ConfigMap" else self.secrets if obj["kind"] == "Secret" else {}
        source.pop(obj["metadata"]["name"], None)

    def lookup(self, kind: str, name: str, key: str, optional: bool, where: str) -> str | None:
        source = self.config_maps if kind == "configMap" else self.secrets
        if name not in source or key not in source[name]:
            if optional:
                return None
            raise LookupError(f"{where}: {kind} {name!r} has no key {key!r} (the pod would not start)")
        return source[name][key]

    def whole(self, kind: str, name: str, optional: bool, where: str) -> dict[str, str]:
        source = self.config_maps if kind == "configMap" else self.secrets
        if name not in source:
            if optional:
                return {}
            raise LookupError(f"{where}: {kind} {name!r} does not exist (the pod would not start)")
        return source[name]


def projected_files(pod_spec: dict[str, Any], container: dict[str, Any], cluster: Cluster,
                    where: str) -> dict[str, dict[str, str]]:
    """The files a container finds under its Secret and ConfigMap mounts: {mountPath: {path:
    content}}, from each volume's `items` or else every key. The rehearsal's kubelet writes them
    with the kubelet's layout; the chart checks hand them to the binary on the host."""
    volumes = {v["name"]: v for v in pod_spec.get("volumes") or []}
    files: dict[str, dict[str, str]] = {}
    for mount in container.get("volumeMounts") or []:
        volume = volumes.get(mount["name"], {})
        kind = "secret" if "secret" in volume else "configMap" if "configMap" in volume else None
        if kind is None:
            continue
        source = volume[kind]
        name = source["secretName"] if kind == "secret" else source["name"]
        data = cluster.whole(kind, name, source.get("optional", False), where)
        items = source.get("items") or [{"key": k, "path": k} for k in sorted(data)]
        files[mount["mountPath"]] = {item["path"]: data[item["key"]] for item in items if item["key"] in data}
    return files


_VAR = re.compile(r"\$\$|\$\(([A-Za-z_][A-Za-z0-9_.-]*)\)")


def expand(text: str, env: dict[str, str]) -> str:
    """Kubernetes' $(VAR) expansion: a defined variable is replaced, `$$` is `$`, others stay."""

    def one(match: re.Match[str]) -> str:
        if match.group(0) == "$$":
            return "$"
        name = match.group(1)
        return env.get(name, match.group(0))

    return _VAR.sub(one, text)


def _field_ref(path: str, pod_name: str, namespace: str, where: str) -> str:
    values = {
        "metadata.name": pod_name,
        "metadata.namespace": namespace,
        "spec.serviceAccountName": "default",
        "status.podIP": "10.0.0.1",
        "status.hostIP": "10.0.0.2",
        "spec.nodeName": "rehearsal-node",
    }
    if path not in values:
        raise Unsupported(where, f"env fieldRef.fieldPath {path}")
    return values[path]


def container_env(
    container: dict[str, Any],
    *,
    pod_name: str,
    namespace: str,
    cluster: Cluster,
    base: dict[str, str] | None = None,
) -> dict[str, str]:
    """The environment a container starts with: `base` (the image's ENV), then envFrom, then env,
    with $(VAR) expansion of env values against what came before."""
    where = f"container {container['name']}"
    env = dict(base or {})
    for source in container.get("envFrom") or []:
        prefix = source.get("prefix", "")
        known = {"prefix", "configMapRef", "secretRef"}
        for field in set(source) - known:
            raise Unsupported(where, f"envFrom.{field}")
        for kind in ("configMap", "secret"):
            ref = source.get(f"{kind}Ref")
            if ref:
                data = cluster.whole(kind, ref["name"], ref.get("optional", False), where)
                env.update({prefix + k: v for k, v in data.items()})
    for var in container.get("env") or []:
        name = var["name"]
        if "value" in var:
            env[name] = expand(str(var["value"]), env)
            continue
        source = var.get("valueFrom") or {}
        if "value" not in var and not source:
            env[name] = ""
        elif "fieldRef" in source:
            env[name] = _field_ref(source["fieldRef"]["fieldPath"], pod_name, namespace, where)
        elif "configMapKeyRef" in source or "secretKeyRef" in source:
            kind = "configMap" if "configMapKeyRef" in source else "secret"
            ref = source[f"{kind}KeyRef"]
            value = cluster.lookup(kind, ref["name"], ref["key"], ref.get("optional", False), where)
            if value is not None:
                env[name] = value
        else:
            raise Unsupported(where, f"env[{name}].valueFrom.{next(iter(source))}")
    return env


def container_argv(container: dict[str, Any], env: dict[str, str], entrypoint: list[str]) -> list[str]:
    """What the container executes: `command` replaces the image's ENTRYPOINT, `args` its CMD
    (the images here have no CMD), each with $(VAR) expansion."""
    command = [expand(str(c), env) for c in container.get("command") or []] or list(entrypoint)
    return command + [expand(str(a), env) for a in container.get("args") or []]


def stand_in_secret(name: str) -> str:
    """A value for a Secret the operator would create (prod): visible ASCII, unique per run."""
    return f"stand-in-{name}-{secrets.token_hex(12)}"


def named_files(pod_spec: dict[str, Any], volume: str) -> list[str]:
    """The keys of a whole-Secret volume that the containers' variables name as files under its
    mount (EXTERNAL_INTEGRATION_KEY_FILE=<mountPath>/<key>): what the operator's Secret holds."""
    keys = []
    for container in pod_spec.get("initContainers", []) + pod_spec.get("containers", []):
        for mount in container.get("volumeMounts") or []:
            if mount["name"] != volume:
                continue
            prefix = mount["mountPath"].rstrip("/") + "/"
            keys += [str(var["value"])[len(prefix):] for var in container.get("env") or []
                     if str(var.get("value", "")).startswith(prefix)]
    return sorted(set(keys))


def operator_secrets(objects: Iterable[dict[str, Any]]) -> dict[str, dict[str, str]]:
    """The Secrets the pods reference that the render does not create, with stand-in values: what
    an operator creates before installing (the prod integration key)."""
    objects = list(objects)
    created = {o["metadata"]["name"] for o in objects if o["kind"] == "Secret"}
    wanted: dict[str, dict[str, str]] = {}
    for workload in workloads(objects):
        spec = workload.pod_spec
        for container in spec.get("initContainers", []) + spec.get("containers", []):
            for var in container.get("env") or []:
                ref = (var.get("valueFrom") or {}).get("secretKeyRef")
                if ref and ref["name"] not in created:
                    wanted.setdefault(ref["name"], {})[ref["key"]] = stand_in_secret(ref["name"])
        for volume in spec.get("volumes") or []:
            secret = volume.get("secret")
            if secret and secret["secretName"] not in created:
                keys = [item["key"] for item in secret.get("items", [])] or named_files(spec, volume["name"]) or ["value"]
                for key in keys:
                    wanted.setdefault(secret["secretName"], {})[key] = stand_in_secret(secret["secretName"])
    return wanted
