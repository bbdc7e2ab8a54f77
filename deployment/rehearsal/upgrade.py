"""The upgrade and rollback rehearsal: the previous release's charts and images installed with the
dev values, records and health history written, then `helm upgrade` to the working tree's charts
and images with the working tree's dev values (each release's own, as a deploy from git does),
then `helm rollback` (the previous revision's manifests applied again), on one Docker engine with the claims kept throughout (kubelet.py's named volumes).

Before anything runs, the render diff (renderdiff.py) of both steps must be clean: a change
Kubernetes refuses in place fails the rehearsal with its manual step. Each step, as Helm applies
it: the step's hooks in Helm's order (pre-upgrade: the dev Secrets, then the config-check Jobs
that mount them; the charts have no pre-rollback hook), in the same namespace (the hook Secrets an
earlier step made are kept, as Helm keeps hook resources), then the step's own objects applied and
every pod of the release replaced by the step's (SIGTERM, exit 0; the same StatefulSet pod
names on the same claims), every pod ready; then every record data-api acknowledged and every
health history line must still be there (the counts before and after are printed), then one
health-check run and the user checks of the release now installed, which write more records.
"""

from __future__ import annotations

import io
import tarfile
from pathlib import Path
from typing import Any, Callable

import docker
import docker.errors
import docker.types
import requests

import podspec
import render
import renderdiff
import sources
from kubelet import PodFailed
from rehearsal import Rehearsal


#: The chart values that pick each image's tag (the umbrella's sections).
IMAGE_SECTIONS = ("backend-api", "data-api", "healthCheck", "logProvider")


def image_tags(tag: str) -> dict[str, Any]:
    return {section: {"image": {"tag": tag}} for section in IMAGE_SECTIONS}


def dev_values(umbrella: Path) -> Path:
    """The dev values shipped with that umbrella chart (its checkout's
    deployment/configuration/dev/values.yaml): a team deploying from git upgrades the chart and its
    per-environment values together (the playbook does), and a release may change both at once
    (values that use a key only the new chart has, or mount a Secret only the new chart makes).
    Where a checkout has none, the working tree's. (<checkout>/deployment/helm/abn-stack: its
    parents[1] is <checkout>/deployment.)"""
    own = umbrella.resolve().parents[1] / "configuration" / "dev" / "values.yaml"
    return own if own.is_file() else render.env_values_file("dev")


def render_release(umbrella: Path, tag: str) -> list[dict[str, Any]]:
    """An umbrella chart (the working tree's, or the base checkout's) rendered as the dev release
    with its own checkout's dev values and the images of `tag`."""
    render.build_dependencies(umbrella)
    return render.render_objects(umbrella, [dev_values(umbrella)], release=render.RELEASE,
                                 namespace=sources.NAMESPACES["dev"], extra_values=image_tags(tag))


class RefusedChange(Exception):
    """The render diff found changes Kubernetes refuses in place; the message gives the steps."""


class Upgrade:
    def __init__(self, base: list[dict[str, Any]], head: list[dict[str, Any]], *, client: docker.DockerClient | None = None,
                 log: Callable[[str], None] = print):
        self.base_objects, self.head_objects = base, head
        self.client = client or docker.from_env()
        self.log = log
        self.lines: list[str] = []

    def say(self, line: str) -> None:
        self.lines.append(line)
        self.log(f"upgrade: {line}")

    def check_render_diff(self) -> None:
        for step, old, new in (("upgrade", self.base_objects, self.head_objects),
                               ("rollback", self.head_objects, self.base_objects)):
            findings = renderdiff.refused_changes(old, new)
            if findings:
                raise RefusedChange(f"{step}: {len(findings)} change(s) Kubernetes refuses in place:\n  "
                                    + "\n  ".join(str(f) for f in findings))
            self.say(f"render diff for the {step}: nothing Kubernetes refuses in place")

    def run(self) -> list[str]:
        self.check_render_diff()
        release = Rehearsal(self.base_objects, source="upgrade", provider=sources.provider_mode(self.base_objects),
                            client=self.client, log=self.log)
        kubelet = release.kubelet
        try:
            release.hooks("pre-install")
            release.install()
            release.cronjobs()
            release.user_checks()
            records, history = self.counts(release, "install of the base release")
            for step, objects, phase in (("upgrade to the working tree", self.head_objects, "pre-upgrade"),
                                         ("rollback to the base release", self.base_objects, "pre-rollback")):
                release = self.apply(release, objects, phase, step)
                self.expect_kept(release, records, history, step)
                release.cronjobs()
                release.hooks("test")
                release.user_checks()
                records, history = self.counts(release, f"{step}, after one health-check run and the user checks")
            for pod in release.serving:
                kubelet.still_live(pod)
            return self.lines + release.result.lines()
        finally:
            kubelet.close()

    def apply(self, current: Rehearsal, objects: list[dict[str, Any]], phase: str, step: str) -> Rehearsal:
        """One revision applied over the running one, on the same kubelet (claims, network)."""
        nxt = Rehearsal(objects, source="upgrade", provider=sources.provider_mode(objects), client=self.client, log=self.log)
        nxt.kubelet.close()
        nxt.kubelet = current.kubelet
        # The same namespace: what the running revision and its hooks left (the hook Secrets
        # kept), plus a stand-in for any operator Secret only the new revision reads.
        for name, data in nxt.cluster.secrets.items():
            current.cluster.secrets.setdefault(name, data)
        nxt.cluster = current.cluster
        nxt.kubelet.services = [o for o in objects if o["kind"] == "Service"]
        nxt.acknowledged = current.acknowledged
        nxt.result = current.result
        hooks = nxt.hook_objects(phase)
        nxt.hooks(phase)
        ran = ", ".join(f"{o['kind']}/{o['metadata']['name']}" for o in hooks)
        self.say(f"{step}: {phase} hooks ran: {ran or 'none (the chart has no ' + phase + ' hook)'}")
        for pod in current.serving:
            took = current.kubelet.stop(pod)
            current.kubelet.remove(pod)
            self.say(f"{step}: {pod.workload.kind}/{pod.workload.name} {pod.name} replaced (SIGTERM: exit 0 in {took:.1f}s)")
        nxt.install(previous=current)
        self.say(f"{step}: every pod ready: {', '.join(sorted(p.name for p in nxt.serving))}")
        return nxt

    # --- what must survive -----------------------------------------------------------------------

    def counts(self, release: Rehearsal, when: str) -> tuple[dict[str, int], list[str]]:
        records = {pod.name: len(self._records(release, pod)) for pod in release._component("data-api")}
        history = self.history(release)
        acknowledged = sum(len(ids) for ids in release.acknowledged.values())
        self.say(f"after the {when}: data-api records {sum(records.values())} "
                 f"({', '.join(f'{k} {v}' for k, v in sorted(records.items()))}; {acknowledged} acknowledged), "
                 f"health history {len(history)} lines")
        return records, history

    def expect_kept(self, release: Rehearsal, records: dict[str, int], history: list[str], step: str) -> None:
        now = {pod.name: self._records(release, pod) for pod in release._component("data-api")}
        for name, ids in release.acknowledged.items():
            missing = [i for i in ids if i not in now.get(name, set())]
            if missing:
                raise PodFailed(f"{step}: {name} lost {len(missing)} of its {len(ids)} acknowledged records")
        for name, count in records.items():
            if len(now.get(name, ())) < count:
                raise PodFailed(f"{step}: {name} returns {len(now.get(name, ()))} records, {count} before")
        after = self.history(release)
        lost = [line for line in history if line not in set(after)]
        if lost:
            raise PodFailed(f"{step}: {len(lost)} of {len(history)} health history lines lost, e.g. {lost[0][:200]}")
        self.say(f"{step}: records before {sum(records.values())}, after {sum(len(v) for v in now.values())} "
                 f"(every acknowledged one kept); health history before {len(history)} lines, after {len(after)} (all kept)")

    @staticmethod
    def _records(release: Rehearsal, pod: Any) -> set[str]:
        answer = requests.get(release._url(pod, "/logs?limit=1000"), timeout=30)
        if answer.status_code != 200:
            raise PodFailed(f"{pod.name}: GET /logs answered {answer.status_code} {answer.text[:200]}")
        return {r["id"] for r in answer.json()["records"]}

    def history(self, release: Rehearsal) -> list[str]:
        """The health-check's history file, read from its claim through a container that is created
        on the claim and never started (the images have no shell)."""
        workload = next((w for w in release.workloads if w.pod_labels.get("app.kubernetes.io/name") == "health-check"
                         and not w.hooks), None)
        if workload is None:
            return []
        container = workload.pod_spec["containers"][0]
        kubelet = release.kubelet
        image = kubelet.local_image(container["image"])
        image_env = dict(e.split("=", 1) for e in image.attrs["Config"]["Env"] or [])
        env = podspec.container_env(container, pod_name="history", namespace=kubelet.namespace, cluster=kubelet.cluster,
                                    base=image_env)
        argv = podspec.container_argv(container, env, [])
        output = argv[argv.index("--output") + 1] if "--output" in argv else env.get("HEALTHCHECK_OUTPUT")
        volumes = {v["name"]: v for v in workload.pod_spec.get("volumes") or []}
        for mount in container.get("volumeMounts") or []:
            claim = (volumes.get(mount["name"]) or {}).get("persistentVolumeClaim")
            if claim and output and output.startswith(mount["mountPath"].rstrip("/") + "/"):
                volume = kubelet.claim(claim["claimName"], (workload.pod_spec.get("securityContext") or {}).get("fsGroup"))
                reader = self.client.containers.create(image.id, labels=kubelet.labels, mounts=[
                    docker.types.Mount(mount["mountPath"], volume, type="volume", read_only=True, no_copy=True)])
                try:
                    stream, _ = reader.get_archive(output)
                except docker.errors.NotFound:
                    return []
                finally:
                    reader.remove(force=True)
                archive = tarfile.open(fileobj=io.BytesIO(b"".join(stream)))
                member = archive.extractfile(archive.getmembers()[0])
                return (member.read() if member else b"").decode().splitlines()
        raise PodFailed(f"{workload.name}: its history {output} is on no claim")

