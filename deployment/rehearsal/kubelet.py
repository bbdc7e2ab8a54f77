"""The kubelet's part, played on the Docker engine: one rendered pod at a time becomes containers
on a private network, with the pod's exact environment, arguments, security context, volumes and
limits, and its probes run the way a kubelet runs them.

What a field means here (anything not listed raises podspec.Unsupported, naming the field):
- pod: securityContext (runAsUser/Group, runAsNonRoot, fsGroup, fsGroupChangePolicy,
  supplementalGroups, seccompProfile RuntimeDefault/Unconfined), volumes (persistentVolumeClaim,
  emptyDir (a tmpfs of root:<fsGroup> with a sizeLimit or medium Memory), secret, configMap),
  initContainers one by one to exit 0, then containers (sharing one network namespace),
  terminationGracePeriodSeconds (SIGTERM, then SIGKILL), activeDeadlineSeconds (a run's bound),
  restartPolicy (a serving container that exits fails the rehearsal; a run's exit code is its
  result). automountServiceAccountToken and enableServiceLinks must be false (no token, no service
  variables are made). Scheduling fields (nodeSelector, affinity, tolerations,
  topologySpreadConstraints, priorityClassName), serviceAccountName and imagePullSecrets have no
  meaning on one engine without an API server or registry and are accepted as such.
- container: image (must exist locally, by tag, or by digest as the local image's ID: local_image;
  imagePullPolicy Always is refused: there is no registry),
  command/args with $(VAR) expansion, env/envFrom, workingDir, ports (TCP), securityContext
  (readOnlyRootFilesystem, allowPrivilegeEscalation, privileged, capabilities), resources.limits
  (memory, cpu; requests only schedule), volumeMounts (mountPath, readOnly), the three probes
  (httpGet on a named or numbered port, HTTP or HTTPS with the certificate unverified as the
  kubelet does, exec, tcpSocket; period, timeout, thresholds, initial delay).
"""

from __future__ import annotations

import dataclasses
import io
import os
import re
import shutil
import socket
import tarfile
import tempfile
import time
import warnings
from pathlib import Path
from typing import Any, Callable

import docker
import docker.errors
import docker.types
import requests
import urllib3

import podspec
from podspec import Unsupported, Workload

POD_FIELDS = {
    "containers", "initContainers", "securityContext", "volumes", "restartPolicy",
    "terminationGracePeriodSeconds", "activeDeadlineSeconds", "automountServiceAccountToken",
    "enableServiceLinks", "serviceAccountName", "imagePullSecrets", "nodeSelector", "affinity",
    "tolerations", "topologySpreadConstraints", "priorityClassName",
}
CONTAINER_FIELDS = {
    "name", "image", "imagePullPolicy", "command", "args", "env", "envFrom", "workingDir", "ports",
    "securityContext", "resources", "volumeMounts", "startupProbe", "livenessProbe",
    "readinessProbe",
}
SECURITY_FIELDS = {
    "runAsUser", "runAsGroup", "runAsNonRoot", "fsGroup", "fsGroupChangePolicy",
    "supplementalGroups", "seccompProfile", "readOnlyRootFilesystem", "allowPrivilegeEscalation",
    "privileged", "capabilities",
}
PROBE_FIELDS = {
    "httpGet", "exec", "tcpSocket", "initialDelaySeconds", "periodSeconds", "timeoutSeconds",
    "successThreshold", "failureThreshold",
}
VOLUME_KINDS = {"persistentVolumeClaim", "emptyDir", "secret", "configMap"}
#: How many log lines a failure shows.
LOG_TAIL = 20


def get_unverified(url: str, **kwargs: Any) -> requests.Response:
    """GET as the kubelet's HTTPS probe makes it: the certificate not verified (the pod's names
    cannot match a published 127.0.0.1 port), without urllib3's warning about it."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", urllib3.exceptions.InsecureRequestWarning)
        return requests.get(url, verify=False, **kwargs)


class PodFailed(Exception):
    """A pod did not do what a kubelet would need of it; the message names pod, probe and logs."""


def check_fields(workload: Workload) -> None:
    """Refuses what this kubelet does not reproduce, naming the field."""
    where = f"{workload.kind}/{workload.name}"
    spec = workload.pod_spec
    _only(spec, POD_FIELDS, where, "spec")
    if spec.get("automountServiceAccountToken", True):
        raise Unsupported(where, "spec.automountServiceAccountToken other than false (no token is made)")
    if spec.get("enableServiceLinks", True):
        raise Unsupported(where, "spec.enableServiceLinks other than false (no service variables are made)")
    _only(spec.get("securityContext") or {}, SECURITY_FIELDS, where, "spec.securityContext")
    for volume in spec.get("volumes") or []:
        kinds = set(volume) - {"name"}
        if len(kinds) != 1 or not kinds <= VOLUME_KINDS:
            raise Unsupported(where, f"spec.volumes[{volume['name']}].{'/'.join(sorted(kinds))}")
    for container in spec.get("initContainers", []) + spec["containers"]:
        at = f"spec.containers[{container['name']}]"
        _only(container, CONTAINER_FIELDS, where, at)
        _only(container.get("securityContext") or {}, SECURITY_FIELDS, where, f"{at}.securityContext")
        _only(container.get("resources") or {}, {"limits", "requests"}, where, f"{at}.resources")
        if container.get("imagePullPolicy") == "Always":
            raise Unsupported(where, f"{at}.imagePullPolicy Always (there is no registry)")
        for port in container.get("ports") or []:
            if port.get("protocol", "TCP") != "TCP" or "hostPort" in port:
                raise Unsupported(where, f"{at}.ports[{port.get('name')}] other than a TCP containerPort")
        for mount in container.get("volumeMounts") or []:
            _only(mount, {"name", "mountPath", "readOnly"}, where, f"{at}.volumeMounts[{mount['name']}]")
        for kind in ("startupProbe", "livenessProbe", "readinessProbe"):
            if kind in container:
                _only(container[kind], PROBE_FIELDS, where, f"{at}.{kind}")


def _only(mapping: dict[str, Any], known: set[str], where: str, at: str) -> None:
    for field in mapping:
        if field not in known:
            raise Unsupported(where, f"{at}.{field}")


def quantity(text: Any) -> float:
    """A Kubernetes quantity: 128Mi, 1Gi, 500M, 250m, 1."""
    match = re.fullmatch(r"([0-9.]+)([A-Za-z]*)", str(text))
    if not match:
        raise ValueError(f"not a quantity: {text!r}")
    number, unit = float(match.group(1)), match.group(2)
    units = {"": 1, "m": 1e-3, "k": 1e3, "M": 1e6, "G": 1e9, "Ki": 2**10, "Mi": 2**20, "Gi": 2**30}
    return number * units[unit]


@dataclasses.dataclass
class Identity:
    """Who a container runs as: the pod's securityContext, overridden by the container's."""

    user: int
    group: int | None
    extra_groups: list[int]
    fs_group: int | None
    context: dict[str, Any]

    @classmethod
    def of(cls, pod_spec: dict[str, Any], container: dict[str, Any], image_user: str, where: str) -> "Identity":
        pod = pod_spec.get("securityContext") or {}
        merged = {**pod, **(container.get("securityContext") or {})}
        image_uid, _, image_gid = (image_user or "0").partition(":")
        user = merged.get("runAsUser", int(image_uid) if image_uid.isdigit() else None)
        if user is None:
            raise Unsupported(where, "a non-numeric image USER without runAsUser")
        if merged.get("runAsNonRoot") and user == 0:
            raise PodFailed(f"{where}: runAsNonRoot, but the container would run as root (the kubelet refuses it)")
        group = merged.get("runAsGroup", int(image_gid) if image_gid.isdigit() else None)
        fs_group = pod.get("fsGroup")
        extra = list(pod.get("supplementalGroups") or []) + ([fs_group] if fs_group is not None else [])
        return cls(user, group, extra, fs_group, merged)

    def docker_options(self, where: str) -> dict[str, Any]:
        sc = self.context
        options: dict[str, Any] = {
            "user": f"{self.user}:{self.group}" if self.group is not None else str(self.user),
            "group_add": [str(g) for g in self.extra_groups],
            "read_only": bool(sc.get("readOnlyRootFilesystem", False)),
            "privileged": bool(sc.get("privileged", False)),
            "cap_drop": list((sc.get("capabilities") or {}).get("drop") or []),
            "cap_add": list((sc.get("capabilities") or {}).get("add") or []),
            "security_opt": [],
        }
        if sc.get("allowPrivilegeEscalation") is False:
            options["security_opt"].append("no-new-privileges:true")
        seccomp = (sc.get("seccompProfile") or {}).get("type", "RuntimeDefault")
        if seccomp == "Unconfined":
            options["security_opt"].append("seccomp=unconfined")
        elif seccomp != "RuntimeDefault":
            raise Unsupported(where, f"seccompProfile.type {seccomp}")
        return options


@dataclasses.dataclass
class RunningPod:
    workload: Workload
    name: str
    containers: dict[str, Any]
    #: (container name, port name or number) -> published 127.0.0.1 port.
    ports: dict[tuple[str, str | int], int]
    #: emptyDir volumes and Secret/ConfigMap folders that live as long as the pod.
    scratch: list[Any]

    def logs(self, container: str, lines: int = LOG_TAIL) -> str:
        try:
            c = self.containers[container]
            return c.logs(tail=lines).decode("utf-8", "replace").rstrip()
        except docker.errors.NotFound:
            return "(container gone)"


class Kubelet:
    """Runs rendered pods of one namespace on a private Docker network of its own."""

    def __init__(self, client: docker.DockerClient, run_id: str, namespace: str, cluster: podspec.Cluster,
                 services: list[dict[str, Any]], log: Callable[[str], None] = print):
        self.client = client
        self.run_id = run_id
        self.namespace = namespace
        self.cluster = cluster
        self.services = services
        self.log = log
        self.labels = {"abn-stack.rehearsal": run_id}
        self.network = client.networks.create(f"abnrh-{run_id}", driver="bridge", labels=self.labels)
        self.claims: dict[str, str] = {}
        self.host_dir = Path(tempfile.mkdtemp(prefix=f"abnrh-{run_id}-"))
        #: Secret and ConfigMap folders written: (folder, volume, fsGroup, where), for updates.
        self.projected: list[tuple[Path, dict[str, Any], int | None, str]] = []
        self.generation = 0

    # --- volumes ---------------------------------------------------------------------------------

    def claim(self, name: str, fs_group: int | None) -> str:
        """The named volume behind a PersistentVolumeClaim, created on first use and kept (it
        outlives its pods, as a claim does)."""
        if name not in self.claims:
            volume = self.client.volumes.create(f"abnrh-{self.run_id}-{name}", labels=self.labels)
            self._own(volume, fs_group)
            self.claims[name] = volume.name
        return self.claims[name]

    def _own(self, volume: Any, fs_group: int | None) -> None:
        """What the kubelet does to a fresh volume for fsGroup: group-owned, setgid, group-writable."""
        if fs_group is None:
            return
        mountpoint = Path(volume.attrs["Mountpoint"])
        if not mountpoint.is_dir():
            raise RuntimeError(f"volume {volume.name}: {mountpoint} is not reachable here; the rehearsal needs a local engine")
        os.chown(mountpoint, 0, fs_group)
        os.chmod(mountpoint, 0o2775)

    def _projected_dir(self, pod: str, volume: dict[str, Any], fs_group: int | None, where: str) -> Path:
        """A Secret or ConfigMap volume as the kubelet writes it: ..<timestamp>/ with the files,
        ..data pointing at it, and one symlink per key through ..data."""
        root = self.host_dir / pod / volume["name"]
        root.mkdir(parents=True)
        self._project(root, volume, fs_group, where)
        os.chmod(root, 0o755)
        self.projected.append((root, volume, fs_group, where))
        return root

    def _project(self, root: Path, volume: dict[str, Any], fs_group: int | None, where: str) -> None:
        """Writes the volume's current data into a new ..<timestamp>/ and swaps it in the way the
        kubelet's atomic writer does: a ..data_tmp link renamed over ..data, the old folder removed."""
        kind = "secret" if "secret" in volume else "configMap"
        source = volume[kind]
        name = source["secretName"] if kind == "secret" else source["name"]
        data = self.cluster.whole(kind, name, source.get("optional", False), where)
        items = source.get("items") or [{"key": k, "path": k} for k in sorted(data)]
        default_mode = source.get("defaultMode", 0o644)
        self.generation += 1
        stamp = root / f"..{time.strftime('%Y_%m_%d_%H_%M_%S')}.{os.getpid()}{self.generation}"
        stamp.mkdir()
        for item in items:
            if item["key"] not in data:
                raise PodFailed(f"{where}: {kind} {name} has no key {item['key']!r}")
            target = stamp / item["path"]
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_text(data[item["key"]])
            os.chown(target, 0, fs_group if fs_group is not None else 0)
            os.chmod(target, item.get("mode", default_mode))
        os.chmod(stamp, 0o755)
        previous = os.readlink(root / "..data") if (root / "..data").is_symlink() else None
        (root / "..data_tmp").symlink_to(stamp.name)
        os.replace(root / "..data_tmp", root / "..data")
        if previous:
            shutil.rmtree(root / previous)
        for item in items:
            top = item["path"].split("/")[0]
            if not (root / top).is_symlink():
                (root / top).symlink_to(f"..data/{top}")

    def update_secret(self, name: str, data: dict[str, str]) -> list[Path]:
        """A changed Secret, as the kubelet's sync delivers it: every mounted copy swapped in
        place (the containers keep running). Returns the volume folders updated."""
        self.cluster.secrets[name] = dict(data)
        return self.sync("secret", name)

    def sync(self, kind: str, name: str) -> list[Path]:
        """Every mounted copy of a Secret or ConfigMap (`kind` "secret" or "configMap") swapped
        in place for the cluster's current data. Returns the volume folders updated."""
        updated = []
        for root, volume, fs_group, where in self.projected:
            source = volume.get(kind) or {}
            # Pods removed since (their folders with them) are skipped.
            if source.get("secretName" if kind == "secret" else "name") == name and root.exists():
                self._project(root, volume, fs_group, where)
                updated.append(root)
        return updated

    def _mounts(self, workload: Workload, pod: str, container: dict[str, Any], fs_group: int | None,
                scratch: list[Any]) -> tuple[list[docker.types.Mount], dict[str, str]]:
        """The container's volume mounts, and its tmpfs mounts (path -> mount options)."""
        where = f"{workload.kind}/{workload.name}"
        tmpfs: dict[str, str] = {}
        volumes = {v["name"]: v for v in workload.pod_spec.get("volumes") or []}
        templates = {t["metadata"]["name"] for t in workload.claim_templates}
        mounts = []
        for mount in container.get("volumeMounts") or []:
            name, target, read_only = mount["name"], mount["mountPath"], bool(mount.get("readOnly", False))
            if name in templates:
                # A StatefulSet's claim <template>-<pod>: the same one every time the pod starts.
                source = self.claim(f"{name}-{pod}", fs_group)
                mounts.append(docker.types.Mount(target, source, type="volume", read_only=read_only, no_copy=True))
                continue
            if name not in volumes:
                raise PodFailed(f"{where}: volumeMount {name} names no volume of the pod")
            volume = volumes[name]
            if "persistentVolumeClaim" in volume:
                claim = volume["persistentVolumeClaim"]
                source = self.claim(claim["claimName"], fs_group)
                mounts.append(docker.types.Mount(target, source, type="volume",
                                                 read_only=read_only or claim.get("readOnly", False), no_copy=True))
            elif "emptyDir" in volume:
                empty = volume["emptyDir"] or {}
                if empty.get("medium") == "Memory" or "sizeLimit" in empty:
                    # What the kubelet makes of it: root:<fsGroup>, setgid, group-writable (or
                    # world-writable without an fsGroup). Through HostConfig.Tmpfs, whose mount
                    # options take a gid (a tmpfs Mount takes only a size and a mode).
                    size = int(quantity(empty.get("sizeLimit", "64Mi")))
                    owner = "mode=1777" if fs_group is None else f"mode=2775,uid=0,gid={fs_group}"
                    tmpfs[target] = f"size={size},{owner}" + (",ro" if read_only else "")
                else:
                    emptydir = self.client.volumes.create(f"abnrh-{self.run_id}-{pod}-{name}", labels=self.labels)
                    self._own(emptydir, fs_group)
                    scratch.append(emptydir)
                    mounts.append(docker.types.Mount(target, emptydir.name, type="volume", read_only=read_only, no_copy=True))
            else:
                folder = self._projected_dir(pod, volume, fs_group, where)
                mounts.append(docker.types.Mount(target, str(folder), type="bind", read_only=True))
        return mounts, tmpfs

    # --- pods ------------------------------------------------------------------------------------

    def aliases(self, workload: Workload, pod: str) -> list[str]:
        """DNS names of the pod: every Service selecting it, as <svc>, <svc>.<ns>, <svc>.<ns>.svc
        and the cluster.local form; a StatefulSet pod also as <pod>.<headless service>."""
        names = []
        ns = self.namespace
        for service in self.services:
            selector = (service.get("spec") or {}).get("selector") or {}
            if not selector or any(workload.pod_labels.get(k) != v for k, v in selector.items()):
                continue
            svc = service["metadata"]["name"]
            self._check_ports(service, workload)
            forms = [svc, f"{svc}.{ns}", f"{svc}.{ns}.svc", f"{svc}.{ns}.svc.cluster.local"]
            if workload.kind == "StatefulSet" and service["spec"].get("clusterIP") == "None":
                forms += [f"{pod}.{form}" for form in forms]
            names += forms
        return names

    def _check_ports(self, service: dict[str, Any], workload: Workload) -> None:
        """Docker's DNS gives a name, not a port mapping: a Service port must be its target port."""
        ports = {}
        for container in workload.pod_spec["containers"]:
            for port in container.get("ports") or []:
                ports[port.get("name")] = port["containerPort"]
                ports[port["containerPort"]] = port["containerPort"]
        for port in service["spec"].get("ports") or []:
            target = port.get("targetPort", port["port"])
            if ports.get(target) != port["port"]:
                raise Unsupported(f"Service/{service['metadata']['name']}",
                                  f"port {port['port']} -> targetPort {target} (a port mapping)")

    def start(self, workload: Workload, pod: str) -> RunningPod:
        """Creates the pod's containers: init containers run to completion first, then the rest
        start in one network namespace, named and reachable as the pod's Services."""
        check_fields(workload)
        where = f"{workload.kind}/{workload.name} pod {pod}"
        spec = workload.pod_spec
        running = RunningPod(workload, pod, {}, {}, [])
        # Init containers one by one, each to exit 0, on the pod's network under the pod's
        # hostname: a namespace an exited container held cannot be joined, so the pod's network
        # namespace is its first app container's (an init container has an address of its own).
        for container in spec.get("initContainers", []):
            docker_container = self._create(workload, pod, container, running, None, where, init=True)
            running.containers[container["name"]] = docker_container
            docker_container.start()
            self._wait_exit(running, container["name"], spec.get("activeDeadlineSeconds", 300), where)
        network_owner = None
        for container in spec["containers"]:
            docker_container = self._create(workload, pod, container, running, network_owner, where)
            if network_owner is None:
                network_owner = docker_container
            running.containers[container["name"]] = docker_container
            docker_container.start()
        return running

    def _create(self, workload: Workload, pod: str, container: dict[str, Any], running: RunningPod,
                network_owner: Any, where: str, init: bool = False) -> Any:
        image = self.local_image(container["image"])
        config = image.attrs["Config"]
        image_env = dict(e.split("=", 1) for e in config.get("Env") or [])
        env = podspec.container_env(container, pod_name=pod, namespace=self.namespace, cluster=self.cluster, base=image_env)
        identity = Identity.of(workload.pod_spec, container, config.get("User", ""), where)
        options = identity.docker_options(where)
        limits = (container.get("resources") or {}).get("limits") or {}
        if "memory" in limits:
            options["mem_limit"] = int(quantity(limits["memory"]))
            options["memswap_limit"] = options["mem_limit"]
        if "cpu" in limits:
            options["nano_cpus"] = int(quantity(limits["cpu"]) * 1e9)
        if container.get("workingDir"):
            options["working_dir"] = container["workingDir"]
        command = [podspec.expand(str(c), env) for c in container.get("command") or []]
        args = [podspec.expand(str(a), env) for a in container.get("args") or []]
        name = f"abnrh-{self.run_id}-{pod}-{container['name']}"[:128]
        labels = {**self.labels, "abn-stack.rehearsal/pod": pod}
        mounts, tmpfs = self._mounts(workload, pod, container, identity.fs_group, running.scratch)
        common = dict(image=image.id, name=name, environment=env, labels=labels, mounts=mounts, tmpfs=tmpfs,
                      **options)
        if command:
            common["entrypoint"] = command
        common["command"] = args or None
        if network_owner is not None:
            return self.client.containers.create(network_mode=f"container:{network_owner.id}", **common)
        dns_search = [f"{self.namespace}.svc.cluster.local", "svc.cluster.local", "cluster.local"]
        if init:
            # No ports and no Service names: nothing routes to a pod before it runs.
            return self.client.containers.create(hostname=pod[:63], network=self.network.name,
                                                 dns_search=dns_search, **common)
        ports = {}
        for c in workload.pod_spec["containers"]:
            for port in c.get("ports") or []:
                ports[f"{port['containerPort']}/tcp"] = ("127.0.0.1", None)
        created = self.client.containers.create(
            hostname=pod[:63], ports=ports, network=self.network.name, dns_search=dns_search, **common)
        # The default attachment has no aliases: reconnect with the pod's Service names.
        self.network.disconnect(created)
        self.network.connect(created, aliases=self.aliases(workload, pod))
        return created

    def publish(self, running: RunningPod) -> None:
        """Reads the 127.0.0.1 ports the engine published for the pod's container ports (on its
        first app container, which holds the pod's network)."""
        first = running.containers[running.workload.pod_spec["containers"][0]["name"]]
        first.reload()
        published = first.attrs["NetworkSettings"]["Ports"] or {}
        for container in running.workload.pod_spec["containers"]:
            for port in container.get("ports") or []:
                binding = published.get(f"{port['containerPort']}/tcp")
                if binding:
                    host_port = int(binding[0]["HostPort"])
                    running.ports[(container["name"], port["containerPort"])] = host_port
                    if port.get("name"):
                        running.ports[(container["name"], port["name"])] = host_port

    # --- probes ----------------------------------------------------------------------------------

    def probe_once(self, running: RunningPod, container: dict[str, Any], probe: dict[str, Any]) -> str | None:
        """One probe as the kubelet makes it; None on success, else why it failed."""
        timeout = probe.get("timeoutSeconds", 1)
        if "httpGet" in probe:
            get = probe["httpGet"]
            scheme = get.get("scheme", "HTTP")
            if scheme not in ("HTTP", "HTTPS"):
                raise Unsupported(running.workload.name, f"probe httpGet.scheme {scheme}")
            port = running.ports.get((container["name"], get["port"]))
            if port is None:
                return f"port {get['port']!r} is not a port of container {container['name']}"
            headers = {h["name"]: h["value"] for h in get.get("httpHeaders") or []}
            try:
                # HTTPS as the kubelet probes it: the certificate is not verified.
                answer = get_unverified(f"{scheme.lower()}://127.0.0.1:{port}{get.get('path', '/')}",
                                        headers=headers, timeout=timeout, allow_redirects=False)
            except requests.RequestException as err:
                return f"GET {get.get('path', '/')} on port {get['port']}: {type(err).__name__}"
            if 200 <= answer.status_code < 400:
                return None
            return f"GET {get.get('path', '/')} on port {get['port']}: HTTP {answer.status_code}"
        if "tcpSocket" in probe:
            port = running.ports.get((container["name"], probe["tcpSocket"]["port"]))
            if port is None:
                return f"port {probe['tcpSocket']['port']!r} is not a port of container {container['name']}"
            try:
                socket.create_connection(("127.0.0.1", port), timeout=timeout).close()
                return None
            except OSError as err:
                return f"TCP connect to {probe['tcpSocket']['port']}: {err}"
        if "exec" in probe:
            result = running.containers[container["name"]].exec_run(probe["exec"]["command"])
            return None if result.exit_code == 0 else f"exec {probe['exec']['command']}: exit {result.exit_code}"
        raise Unsupported(running.workload.name, "a probe without httpGet, tcpSocket or exec")

    def _probe_until(self, running: RunningPod, container: dict[str, Any], kind: str, where: str) -> None:
        """Repeats a probe every periodSeconds until successThreshold successes in a row, or fails
        after failureThreshold failures in a row (what makes a kubelet restart or unready a pod)."""
        probe = container[kind]
        period = probe.get("periodSeconds", 10)
        failures_allowed = probe.get("failureThreshold", 3)
        successes_needed = probe.get("successThreshold", 1)
        time.sleep(probe.get("initialDelaySeconds", 0))
        failures = successes = 0
        while True:
            self._alive(running, container["name"], where)
            why = self.probe_once(running, container, probe)
            if why is None:
                successes += 1
                failures = 0
                if successes >= successes_needed:
                    return
            else:
                failures += 1
                successes = 0
                if failures >= failures_allowed:
                    raise PodFailed(self._failure(running, container["name"],
                                                  f"{kind} failed {failures} times in a row: {why}", where))
            time.sleep(period)

    def wait_ready(self, running: RunningPod) -> None:
        """Started (startupProbe), then ready (readinessProbe) and live (livenessProbe), per
        container, as the kubelet sequences them."""
        where = f"{running.workload.kind}/{running.workload.name} pod {running.name}"
        self.publish(running)
        for container in running.workload.pod_spec["containers"]:
            for kind in ("startupProbe", "readinessProbe", "livenessProbe"):
                if kind in container:
                    self._probe_until(running, container, kind, where)

    def still_live(self, running: RunningPod) -> None:
        """Still running, never restarted, and each liveness and readiness probe passes now."""
        where = f"{running.workload.kind}/{running.workload.name} pod {running.name}"
        for container in running.workload.pod_spec["containers"]:
            self._alive(running, container["name"], where)
            for kind in ("livenessProbe", "readinessProbe"):
                if kind in container:
                    why = self.probe_once(running, container, container[kind])
                    if why is not None:
                        raise PodFailed(self._failure(running, container["name"], f"{kind} failed: {why}", where))

    def _alive(self, running: RunningPod, container: str, where: str) -> None:
        c = running.containers[container]
        c.reload()
        state = c.attrs["State"]
        if state["Status"] != "running" or state.get("OOMKilled"):
            detail = f"exited with code {state['ExitCode']}" + (" (OOMKilled)" if state.get("OOMKilled") else "")
            raise PodFailed(self._failure(running, container, f"container {detail}", where))

    def _failure(self, running: RunningPod, container: str, what: str, where: str) -> str:
        return f"{where}: {what}\n  last log lines of {container}:\n    " + running.logs(container).replace("\n", "\n    ")

    def _wait_exit(self, running: RunningPod, container: str, bound_seconds: float, where: str) -> int:
        c = running.containers[container]
        try:
            status = c.wait(timeout=bound_seconds)
        except requests.exceptions.ConnectionError:
            raise PodFailed(self._failure(running, container, f"still running after {bound_seconds}s (activeDeadlineSeconds)", where))
        code = status["StatusCode"]
        if code != 0:
            raise PodFailed(self._failure(running, container, f"exited with code {code}", where))
        return code

    def run_client(self, image: str, argv: list[str], name: str, bound_seconds: float = 60) -> tuple[int, str]:
        """A client inside the cluster network, as a pod with the charts' hardening would be
        (UID 65532, read-only root, no capabilities, no new privileges), resolving names through
        the network's DNS with the pods' search list: its exit code and output. Removed after."""
        created = self.client.containers.create(
            self.local_image(image).id, entrypoint=argv[:1], command=argv[1:],
            name=f"abnrh-{self.run_id}-{name}"[:128], labels=self.labels, network=self.network.name,
            dns_search=[f"{self.namespace}.svc.cluster.local", "svc.cluster.local", "cluster.local"],
            user="65532:65532", read_only=True, cap_drop=["ALL"], security_opt=["no-new-privileges:true"])
        try:
            created.start()
            try:
                code = created.wait(timeout=bound_seconds)["StatusCode"]
            except requests.exceptions.ConnectionError:
                raise PodFailed(f"client {name} ({' '.join(argv)}): still running after {bound_seconds}s") from None
            return code, created.logs().decode("utf-8", "replace")
        finally:
            created.remove(force=True)

    def address(self, running: RunningPod) -> str:
        """The pod's address on the network (its first app container's)."""
        owner = running.containers[running.workload.pod_spec["containers"][0]["name"]]
        owner.reload()
        return owner.attrs["NetworkSettings"]["Networks"][self.network.name]["IPAddress"]

    def run_to_completion(self, workload: Workload) -> RunningPod:
        """A Job, CronJob run, hook or test pod: its containers must exit 0 within
        activeDeadlineSeconds."""
        pod = workload.pod_names()[0]
        running = self.start(workload, pod)
        where = f"{workload.kind}/{workload.name} pod {pod}"
        bound = workload.pod_spec.get("activeDeadlineSeconds", 300)
        for container in workload.pod_spec["containers"]:
            self._wait_exit(running, container["name"], bound, where)
        return running

    def stop(self, running: RunningPod) -> float:
        """SIGTERM, then SIGKILL after terminationGracePeriodSeconds (30 by default); the pod must
        exit 0 within the grace period. Returns the seconds it took."""
        grace = running.workload.pod_spec.get("terminationGracePeriodSeconds", 30)
        where = f"{running.workload.kind}/{running.workload.name} pod {running.name}"
        started = time.monotonic()
        for container in reversed(list(running.containers.values())):
            container.stop(timeout=grace)
        took = time.monotonic() - started
        for name, container in running.containers.items():
            container.reload()
            code = container.attrs["State"]["ExitCode"]
            if code != 0:
                raise PodFailed(self._failure(running, name, f"SIGTERM ended it with exit code {code} after {took:.1f}s (grace {grace}s)", where))
        return took

    def remove(self, running: RunningPod) -> None:
        for container in running.containers.values():
            container.remove(force=True, v=True)
        for volume in running.scratch:
            volume.remove(force=True)
        shutil.rmtree(self.host_dir / running.name, ignore_errors=True)

    def read_file(self, running: RunningPod, container: str, path: str) -> bytes:
        """A file from the container's filesystem or volumes (the container may have exited).
        Symbolic links are followed, as a process opening the path would (a Secret or ConfigMap
        key is a link through ..data); at most 8 of them."""
        for _ in range(8):
            stream, _ = running.containers[container].get_archive(path)
            archive = tarfile.open(fileobj=io.BytesIO(b"".join(stream)))
            member = archive.getmembers()[0]
            if not member.issym():
                extracted = archive.extractfile(member)
                return extracted.read() if extracted else b""
            path = member.linkname if member.linkname.startswith("/") else f"{path.rsplit('/', 1)[0]}/{member.linkname}"
        raise PodFailed(f"{running.name}: {path}: more than 8 symbolic links")

    def local_image(self, reference: str) -> Any:
        """The local image a pod's `image` names. By tag as the engine resolves it; by digest
        (`repository@sha256:<hex>`), the image whose ID is that digest and which carries a tag of
        that repository: local images have no registry (manifest) digest, so the rehearsal pins by
        the image ID, the digest of the image's configuration, which names its exact content."""
        if "@" not in reference:
            return self.client.images.get(reference)
        repository, digest = reference.split("@", 1)
        if not digest.startswith("sha256:"):
            raise Unsupported(reference, f"image digest {digest} (only sha256)")
        try:
            image = self.client.images.get(digest)
        except docker.errors.ImageNotFound:
            raise PodFailed(f"image {reference}: no local image has the ID {digest}") from None
        if image.id != digest or not any(tag.rsplit(":", 1)[0] == repository for tag in image.tags):
            raise PodFailed(f"image {reference}: the local image {image.id} is not tagged as {repository} ({image.tags})")
        return image

    def close(self) -> None:
        """Removes everything of this run: containers, network, volumes, host folders."""
        for container in self.client.containers.list(all=True, filters={"label": f"abn-stack.rehearsal={self.run_id}"}):
            container.remove(force=True, v=True)
        self.network.remove()
        for volume in self.client.volumes.list(filters={"label": f"abn-stack.rehearsal={self.run_id}"}):
            volume.remove(force=True)
        shutil.rmtree(self.host_dir, ignore_errors=True)
