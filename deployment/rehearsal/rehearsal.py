"""The deploy rehearsal: a rendered release run the way Helm and a kubelet would run it, on the
Docker engine, followed by the checks a user makes after `helm install`.

Order, as Helm applies a release: the pre-install hooks by weight, then name (the chart-made dev
Secrets, created then, then every workload's --check-config Job), then the release's own objects
and workloads (every replica of every Deployment and StatefulSet, started together, each waited
for through its startup, readiness and liveness probes), then one run of each CronJob's job
template, then the `helm test` pods. A Secret or ConfigMap exists for the pods only from the moment
Helm would create it: before the install, only what the operator made. Then:
backend-api serves /api_1 and downloads logs from the dev log-provider with the rendered key;
data-api accepts records and returns them; the CronJob's history is on its claim. Then a key
rotation through the mounted Secret, reloaded live without a restart. Then a rollout:
every serving pod gets SIGTERM and must exit 0 within its terminationGracePeriodSeconds, is started
again on the same volumes, becomes ready again, and data-api still has every record it
acknowledged. Everything the run created is removed at the end, whatever happened.
"""

from __future__ import annotations

import dataclasses
import json
import secrets
import time
from typing import Any, Callable

import docker
import requests

import podspec
from kubelet import Kubelet, PodFailed, RunningPod, get_unverified


@dataclasses.dataclass
class Result:
    """What one rehearsal did: a line per pod, and the user checks."""

    source: str
    pods: list[str] = dataclasses.field(default_factory=list)
    checks: list[str] = dataclasses.field(default_factory=list)
    skipped: list[str] = dataclasses.field(default_factory=list)

    def lines(self) -> list[str]:
        return ([f"{self.source}: pod {p}" for p in self.pods] + [f"{self.source}: check {c}" for c in self.checks]
                + [f"{self.source}: skipped {s}" for s in self.skipped])


#: Most reads through data-api's Service name before a replica that never answered fails the check.
READS_BOUND = 40


def _http(method: str, url: str, **kwargs: Any) -> requests.Response:
    return requests.request(method, url, timeout=kwargs.pop("timeout", 30), **kwargs)


class Rehearsal:
    def __init__(self, objects: list[dict[str, Any]], *, source: str, provider: tuple[str, str],
                 client: docker.DockerClient | None = None, log: Callable[[str], None] = print,
                 after_rollout: Callable[["Rehearsal"], None] | None = None,
                 existing: list[dict[str, Any]] | None = None):
        """`provider`: sources.provider_mode(objects), where backend-api's provider is.
        `after_rollout`: a test's own check once every pod was rolled, while they all still run.
        `existing`: the ConfigMaps and Secrets in the namespace before the install (what an
        operator made with kubectl)."""
        self.after_rollout = after_rollout
        self.objects = objects
        self.source = source
        self.provider = provider
        self.client = client or docker.from_env()
        self.log = log
        self.result = Result(source)
        namespaces = {o["metadata"].get("namespace") for o in objects if o["metadata"].get("namespace")}
        assert len(namespaces) == 1, f"one namespace per release, found {namespaces}"
        self.namespace = namespaces.pop()
        existing = list(existing or [])
        operator = podspec.operator_secrets(objects + existing)
        if operator:
            self.result.checks.append(f"stand-in Secrets the operator would create: {', '.join(sorted(operator))}")
        # The namespace before Helm runs: the operator's objects only. The render's Secrets and
        # ConfigMaps are created when Helm creates them (hooks(), install()).
        self.cluster = podspec.Cluster(existing, operator)
        self.workloads = podspec.workloads(objects)
        self.kubelet = Kubelet(self.client, f"{source.replace('/', '-')}-{secrets.token_hex(3)}", self.namespace,
                               self.cluster, [o for o in objects if o["kind"] == "Service"], log=log)
        self.serving: list[RunningPod] = []
        #: data-api pod name -> ids of the records it answered 201 for.
        self.acknowledged: dict[str, list[str]] = {}

    # --- the phases ------------------------------------------------------------------------------

    def run(self) -> Result:
        try:
            self.hooks("pre-install")
            self.install()
            self.cronjobs()
            self.hooks("test")
            self.user_checks()
            self.rotate_key()
            self.rollout()
            if self.after_rollout:
                self.after_rollout(self)
            for pod in self.serving:
                self.kubelet.still_live(pod)
            return self.result
        finally:
            self.kubelet.close()

    def _done(self, running: RunningPod, what: str) -> None:
        line = f"{running.workload.kind}/{running.workload.name} {running.name}: {what}"
        self.result.pods.append(line)
        self.log(f"  {self.source}: {line}")

    def hook_objects(self, phase: str) -> list[dict[str, Any]]:
        """The hooks of a phase in the order Helm runs them: by weight, then by name."""
        return sorted((o for o in self.objects if phase in podspec.hooks_of(o)[0]),
                      key=lambda o: (podspec.hooks_of(o)[1], o["metadata"]["name"]))

    def hooks(self, phase: str) -> None:
        """Helm's hooks of a phase, one after the other in Helm's order: a Secret or ConfigMap is
        created at its turn (replacing the one an earlier phase left, as before-hook-creation
        does), so a Job of a later weight can mount it; a Job or Pod must exit 0. Once all
        succeeded, the hooks with hook-succeeded in their delete policy are deleted; the others
        stay, also after the release changes (Helm does not manage hook resources as part of it)."""
        runs = {(w.kind, w.name): w for w in self.workloads}
        hooks = self.hook_objects(phase)
        for obj in hooks:
            kind, name = obj["kind"], obj["metadata"]["name"]
            if (kind, name) in runs:
                running = self.kubelet.run_to_completion(runs[(kind, name)])
                self._done(running, f"{phase} hook exited 0")
                self.kubelet.remove(running)
            elif self._create(obj):
                policies = podspec.hook_delete_policies(obj)
                line = (f"{kind}/{name}: {phase} hook created (weight {podspec.hooks_of(obj)[1]}), "
                        + ("deleted once the phase succeeded" if "hook-succeeded" in policies else
                           f"kept ({', '.join(policies)})"))
                self.result.checks.append(line)
                self.log(f"  {self.source}: {line}")
        for obj in hooks:
            if "hook-succeeded" in podspec.hook_delete_policies(obj):
                self.cluster.delete(obj)

    def _create(self, obj: dict[str, Any]) -> bool:
        """A Secret or ConfigMap created or replaced in the namespace, its copies mounted in running
        pods swapped as the kubelet's sync does; False for a kind no pod reads here."""
        kind = "secret" if obj["kind"] == "Secret" else "configMap"
        store = self.cluster.secrets if kind == "secret" else self.cluster.config_maps
        before = store.get(obj["metadata"]["name"])
        if not self.cluster.apply(obj):
            return False
        if before is not None and store[obj["metadata"]["name"]] != before:
            self.kubelet.sync(kind, obj["metadata"]["name"])
        return True

    def install(self, previous: "Rehearsal | None" = None) -> None:
        """The release's own objects as Helm applies a revision: its Secrets and ConfigMaps created
        or updated, those of the `previous` revision (an upgrade's, a rollback's) it no longer has
        deleted, hook resources left as they are. Then every replica of every release workload,
        started together, then each waited for."""
        own = [o for o in self.objects if not podspec.hooks_of(o)[0]]
        if previous is not None:
            names = {(o["kind"], o["metadata"]["name"]) for o in own}
            for obj in previous.objects:
                if not podspec.hooks_of(obj)[0] and (obj["kind"], obj["metadata"]["name"]) not in names:
                    self.cluster.delete(obj)
        for obj in own:
            self._create(obj)
        started = []
        for workload in self.workloads:
            if workload.hooks or workload.runs_to_completion:
                continue
            for pod in workload.pod_names():
                started.append(self.kubelet.start(workload, pod))
        for running in started:
            self.kubelet.wait_ready(running)
            self._done(running, "started, ready and live")
        self.serving = started

    def cronjobs(self) -> None:
        """One run of each CronJob's job template; the health-check's history must be on its claim."""
        for workload in self.workloads:
            if workload.kind != "CronJob" or workload.hooks:
                continue
            running = self.kubelet.run_to_completion(workload)
            self._done(running, "job run exited 0")
            container = workload.pod_spec["containers"][0]
            image_env = dict(e.split("=", 1) for e in self.kubelet.local_image(container["image"]).attrs["Config"]["Env"] or [])
            env = podspec.container_env(container, pod_name=running.name, namespace=self.namespace, cluster=self.cluster,
                                        base=image_env)
            argv = podspec.container_argv(container, env, [])
            output = argv[argv.index("--output") + 1] if "--output" in argv else env.get("HEALTHCHECK_OUTPUT")
            if output and output != "-":
                lines = [json.loads(line) for line in self.kubelet.read_file(running, container["name"], output).splitlines()]
                targets = [a.split("=", 1)[0] for a, flag in zip(argv[1:], argv) if flag == "--target"]
                recorded = {entry["target"] for entry in lines}
                missing = set(targets) - recorded
                if missing or not lines:
                    raise PodFailed(f"{workload.name}: the history {output} on its claim lacks {sorted(missing)}: {lines[:3]}")
                self.result.checks.append(f"{workload.name}: {len(lines)} history lines on its claim ({', '.join(sorted(recorded))})")
            self.kubelet.remove(running)

    # --- what a user checks ------------------------------------------------------------------------

    def _pods_of(self, name: str) -> list[RunningPod]:
        return [p for p in self.serving if p.workload.name == name]

    def _url(self, pod: RunningPod, path: str) -> str:
        container = pod.workload.pod_spec["containers"][0]["name"]
        if (container, "http") not in pod.ports and (container, "https") in pod.ports:
            # The dev log-provider serves HTTPS only (its port is named https).
            return f"https://127.0.0.1:{pod.ports[(container, 'https')]}{path}"
        return f"http://127.0.0.1:{pod.ports[(container, 'http')]}{path}"

    def _component(self, component: str) -> list[RunningPod]:
        return [p for p in self.serving if p.workload.pod_labels.get("app.kubernetes.io/name") == component]

    def user_checks(self) -> None:
        for pod in self._component("backend-api"):
            answer = _http("GET", self._url(pod, "/api_1"))
            if answer.status_code != 200 or not answer.text.startswith("completed: "):
                raise PodFailed(f"{pod.name}: GET /api_1 answered {answer.status_code} {answer.text[:200]}")
        self.result.checks.append("backend-api GET /api_1: 200 on every replica")
        mode, url = self.provider
        # An external provider is not called from here: this machine has no network.
        for pod in self._component("backend-api") if mode != "external" else []:
            answer = _http("GET", self._url(pod, "/download_external_logs?limit=5"))
            if mode == "off":
                if answer.status_code != 503 or answer.json().get("code") != "integration_not_configured":
                    raise PodFailed(f"{pod.name}: without EXTERNAL_LOGS_URL, /download_external_logs answered "
                                    f"{answer.status_code} {answer.text[:200]}")
                continue
            lines = [json.loads(line) for line in answer.text.splitlines() if line.strip()]
            if answer.status_code != 200 or len(lines) != 5:
                container = pod.workload.pod_spec["containers"][0]["name"]
                raise PodFailed(f"{pod.name}: GET /download_external_logs?limit=5 answered {answer.status_code} "
                                f"{answer.text[:300]}\n  backend-api log:\n    {pod.logs(container)}")
        if mode == "external":
            self.result.skipped.append(f"/download_external_logs: the provider {url} is outside the release "
                                       "(the real provider; this machine has no network)")
        elif mode == "off":
            self.result.checks.append("backend-api /download_external_logs without a provider: 503 integration_not_configured")
        else:
            self.result.checks.append(f"backend-api /download_external_logs?limit=5 through {url}: 5 lines, "
                                      "the key from the Secret")
        data_pods = self._component("data-api")
        for pod in data_pods:
            ids = self._write_records(pod, 3)
            self._expect_records(pod, ids, "after writing")
        self.result.checks.append("data-api POST /logs then GET /logs: every record read back, on every replica")
        claim = _one_shared_claim(data_pods)
        if claim:
            # Shared mode: the Service may send the read to any replica, so each must return what
            # any other acknowledged.
            for writer in data_pods:
                for reader in data_pods:
                    self._expect_records(reader, self.acknowledged[writer.name],
                                         f"after {writer.name} acknowledged them (shared claim {claim})")
            self.result.checks.append(f"data-api shared claim {claim}: every record acknowledged by any of the "
                                      f"{len(data_pods)} replicas read back through each of them")
            self._read_your_write_through_the_service(data_pods, "after install")
        for pod in self._component("health-check"):
            self._expect_status_page(pod)
        self._expect_delivered_settings()

    def _expect_delivered_settings(self) -> None:
        """What the operator's Secrets and ConfigMaps hand every serving container, read back from
        the running containers: each variable from a secretKeyRef/configMapKeyRef has the object's
        value in the process environment, and each variable naming a file under a Secret or
        ConfigMap mount (EXTERNAL_INTEGRATION_KEY_FILE, SSL_CERT_FILE for a private CA) names a
        file with exactly the object's data. Only the names are reported, never a value."""
        checked = []
        for pod in self.serving:
            spec = pod.workload.pod_spec
            for container in spec["containers"]:
                where = f"{pod.name}/{container['name']}"
                running = pod.containers[container["name"]]
                running.reload()
                environment = dict(e.split("=", 1) for e in running.attrs["Config"]["Env"] or [])
                files = podspec.projected_files(spec, container, self.cluster, where)
                for var in container.get("env") or []:
                    source = var.get("valueFrom") or {}
                    ref = source.get("secretKeyRef") or source.get("configMapKeyRef")
                    if ref:
                        kind = "secret" if "secretKeyRef" in source else "configMap"
                        wanted = self.cluster.lookup(kind, ref["name"], ref["key"], ref.get("optional", False), where)
                        if environment.get(var["name"]) != wanted:
                            raise PodFailed(f"{where}: {var['name']} is not the value of {kind} {ref['name']}/{ref['key']}")
                        checked.append(f"{pod.workload.name}/{container['name']} {var['name']} (from {kind} {ref['name']})")
                    value = str(var.get("value", ""))
                    for mount, contents in files.items():
                        name = value[len(mount.rstrip("/")) + 1:]
                        if value.startswith(mount.rstrip("/") + "/") and name in contents:
                            if self.kubelet.read_file(pod, container["name"], value).decode() != contents[name]:
                                raise PodFailed(f"{where}: {var['name']} names {value}, which does not hold the mounted data")
                            checked.append(f"{pod.workload.name}/{container['name']} {var['name']} (file under {mount})")
        if checked:
            self.result.checks.append("delivered to the running containers as the objects hold them: "
                                      + ", ".join(sorted(set(checked))))

    def _expect_status_page(self, pod: RunningPod) -> None:
        """health-check serve (healthCheck.mode serve): every target up in /api/v1/status, reached
        through the release's Services (bounded: 60 polls of 0.5 s)."""
        args = pod.workload.pod_spec["containers"][0]["args"]
        targets = {a.split("=", 1)[0] for a, flag in zip(args[1:], args) if flag == "--target"}
        up: set[str] = set()
        for _ in range(60):
            answer = _http("GET", self._url(pod, "/api/v1/status"))
            if answer.status_code == 200:
                up = {t["target"] for t in answer.json()["targets"] if t["up"]}
                if up >= targets:
                    break
            time.sleep(0.5)
        else:
            container = pod.workload.pod_spec["containers"][0]["name"]
            raise PodFailed(f"{pod.name}: /api/v1/status shows {sorted(up)} up, not every target of {sorted(targets)}"
                            f"\n  health-check log:\n    {pod.logs(container)}")
        page = _http("GET", self._url(pod, "/"))
        if page.status_code != 200 or not all(f"<h2>{t}</h2>" in page.text for t in targets):
            raise PodFailed(f"{pod.name}: GET / answered {page.status_code} without a section per target")
        self.result.checks.append(f"health-check serve: /api/v1/status and the page show {', '.join(sorted(targets))} "
                                  "up through the release's Services")

    def rotate_key(self) -> None:
        """A key rotation through the mounted Secret: the Secret changes, the kubelet swaps every
        mounted copy, and backend-api (and the in-release provider) reload it live. Each backend
        pod must report the reload in secret_reloads_total, download with the new key, and still
        be the same container (started once, never restarted)."""
        backends = self._component("backend-api")
        volumes = [v for p in backends[:1] for v in p.workload.pod_spec.get("volumes") or [] if "secret" in v]
        if self.provider[0] != "release" or not volumes:
            self.result.skipped.append("key rotation: needs the in-release provider and the key from a mounted Secret")
            return
        secret = volumes[0]["secret"]["secretName"]
        key = next(iter(self.cluster.whole("secret", secret, False, "rotation")))
        before = {p.name: {n: (c.attrs["Id"], c.attrs["State"]["StartedAt"]) for n, c in p.containers.items()} for p in backends}
        updated = self.kubelet.update_secret(secret, {key: f"rotated-{secrets.token_hex(16)}"})
        reload_ok = 'secret_reloads_total{secret="external_integration_key",outcome="ok"}'
        # The in-release provider reads the same Secret: until it has reloaded too, a download
        # with the new key is (rightly) refused with 401, so wait for both sides.
        provider_ok = 'secret_reloads_total{secret="provider_keys",outcome="ok"}'
        providers = [p for p in self._component("log-provider")
                     if any((v.get("secret") or {}).get("secretName") == secret
                            for v in p.workload.pod_spec.get("volumes") or [])]
        for pod in providers:
            self._wait_for_reload(pod, provider_ok)
        for pod in backends:
            self._wait_for_reload(pod, reload_ok)
            answer = _http("GET", self._url(pod, "/download_external_logs?limit=5"))
            if answer.status_code != 200:
                raise PodFailed(f"{pod.name}: after the rotation /download_external_logs answered "
                                f"{answer.status_code} {answer.text[:200]}")
            for name, container in pod.containers.items():
                container.reload()
                now = (container.attrs["Id"], container.attrs["State"]["StartedAt"])
                if now != before[pod.name][name] or container.attrs.get("RestartCount", 0):
                    raise PodFailed(f"{pod.name}: container {name} was restarted by the rotation")
            self.kubelet.still_live(pod)
        self.result.checks.append(f"key rotation: Secret {secret} swapped in {len(updated)} mounted copies; every "
                                  "backend-api reloaded it live (secret_reloads_total ok) and downloads with it, "
                                  "same containers, no restart")

    def _wait_for_reload(self, pod: RunningPod, series: str, within: float = 60.0) -> None:
        """Until the pod's `series` counts one reload (bounded)."""
        deadline = time.monotonic() + within
        while self._metric(pod, series) < 1:
            if time.monotonic() > deadline:
                raise PodFailed(f"{pod.name}: no reload of the rotated key within {within:.0f} s (of {series})")
            time.sleep(0.2)

    def _metric(self, pod: RunningPod, series: str) -> float:
        url = self._url(pod, "/metrics")
        # Over the pod's published loopback port the certificate's names cannot match, so, like
        # the kubelet's HTTPS probes, this read does not verify it (the key never travels here).
        answer = get_unverified(url, timeout=30) if url.startswith("https://") else _http("GET", url)
        for line in answer.text.splitlines():
            if line.startswith(series + " "):
                return float(line.split()[-1])
        return 0.0

    def _write_records(self, pod: RunningPod, count: int) -> list[str]:
        ids = []
        for i in range(count):
            answer = _http("POST", self._url(pod, "/logs"), json={"message": f"rehearsal {self.source} {i}", "level": "info"})
            if answer.status_code != 201:
                raise PodFailed(f"{pod.name}: POST /logs answered {answer.status_code} {answer.text[:200]}")
            ids.append(answer.json()["id"])
        self.acknowledged.setdefault(pod.name, []).extend(ids)
        return ids

    def _expect_records(self, pod: RunningPod, ids: list[str], when: str) -> None:
        answer = _http("GET", self._url(pod, "/logs?limit=1000"))
        found = {r["id"] for r in answer.json()["records"]} if answer.status_code == 200 else set()
        missing = [i for i in ids if i not in found]
        if missing:
            raise PodFailed(f"{pod.name}: {len(missing)} of {len(ids)} acknowledged records missing {when} "
                            f"(GET /logs: {answer.status_code})")

    def _read_your_write_through_the_service(self, pods: list[RunningPod], when: str) -> None:
        """What a client in the cluster sees of shared mode: a write through data-api's Service
        name, then reads through it until every replica answered at least twice (at most
        READS_BOUND reads), each returning the record. The client is the probe binary of the
        pods' image in a container on the release's network: it looks the name up in the
        network's DNS on every run, which returns every pod holding the name in rotation, and
        says which address answered; the answering pod's access log must hold the request's id."""
        service = self._service_of(pods[0])
        image = pods[0].workload.pod_spec["containers"][0]["image"]
        by_address = {self.kubelet.address(p): p for p in pods}
        tag = secrets.token_hex(4)
        base = f"http://{service['metadata']['name']}:{service['spec']['ports'][0]['port']}"

        def call(request_id: str, *args: str) -> tuple[RunningPod, str]:
            code, output = self.kubelet.run_client(
                image, ["/usr/local/bin/probe", "--header", f"x-request-id: {request_id}", "--body", *args, "10"],
                request_id)
            first, _, body = output.partition("\n")
            via = first.split(" (", 1)[1].split(")", 1)[0].rsplit(":", 1)[0] if " (" in first else ""
            if code != 0 or via not in by_address:
                raise PodFailed(f"client in the network: {' '.join(args)} exited {code}: {output[:300]} "
                                f"(pods at {sorted(by_address)})")
            pod = by_address[via]
            container = pod.workload.pod_spec["containers"][0]["name"]
            if request_id not in pod.containers[container].logs(tail=200).decode("utf-8", "replace"):
                raise PodFailed(f"{pod.name}: the client reached {via}, but its access log has no {request_id}")
            return pod, body
        message = f"rehearsal {self.source} through the Service {when} {tag}"
        writer, body = call(f"rehearsal-write-{tag}", "--post-json", json.dumps({"message": message}), f"{base}/logs")
        record = json.loads(body)["id"]
        self.acknowledged.setdefault(writer.name, []).append(record)
        answered: dict[str, int] = {p.name: 0 for p in pods}
        reads = 0
        while min(answered.values()) < 2:
            if reads == READS_BOUND:
                raise PodFailed(f"{READS_BOUND} reads through {base} were answered by {answered}: the Service name "
                                "did not reach every replica")
            reads += 1
            reader, body = call(f"rehearsal-read-{reads}-{tag}", f"{base}/logs?limit=1000")
            if record not in {r["id"] for r in json.loads(body)["records"]}:
                raise PodFailed(f"{reader.name}: GET /logs through {base} lacks {record}, written through "
                                f"{writer.name} ({when})")
            answered[reader.name] += 1
        self.result.checks.append(
            f"data-api through the Service name {base} from a client in the network ({when}): the write answered by "
            f"{writer.name}, {reads} reads each returning it, answered per replica {answered}")

    def _service_of(self, pod: RunningPod) -> dict[str, Any]:
        """The Service (not the headless one) that selects the pod."""
        for service in self.kubelet.services:
            spec = service.get("spec") or {}
            selector = spec.get("selector") or {}
            if selector and spec.get("clusterIP") != "None" and all(
                    pod.workload.pod_labels.get(k) == v for k, v in selector.items()):
                return service
        raise PodFailed(f"{pod.name}: no Service selects it")

    def rollout(self) -> None:
        """Each serving pod: SIGTERM within its grace period, exit 0, started again on the same
        volumes, ready again; data-api keeps every acknowledged record."""
        for pod in self._component("data-api"):
            self._write_records(pod, 5)
        restarted = []
        for pod in self.serving:
            took = self.kubelet.stop(pod)
            self.kubelet.remove(pod)
            # A StatefulSet pod comes back with its name and claim; a Deployment's with a new name.
            name = pod.name if pod.workload.kind == "StatefulSet" else pod.workload.pod_names()[0]
            again = self.kubelet.start(pod.workload, name)
            self.kubelet.wait_ready(again)
            self._done(again, f"SIGTERM: exit 0 in {took:.1f}s (grace {pod.workload.pod_spec.get('terminationGracePeriodSeconds', 30)}s), started again, ready")
            if pod.name in self.acknowledged:
                self._expect_records(again, self.acknowledged[pod.name], "after the restart")
                self.result.checks.append(f"{again.name}: all {len(self.acknowledged[pod.name])} acknowledged records kept across SIGTERM and restart")
            restarted.append(again)
        self.serving = restarted
        data_pods = self._component("data-api")
        if _one_shared_claim(data_pods):
            self._read_your_write_through_the_service(data_pods, "after the rollout")


def _one_shared_claim(pods: list[RunningPod]) -> str | None:
    """The claim every one of several pods mounts as its data volume (data-api shared mode)."""
    claims = set()
    for pod in pods:
        volumes = {v["name"]: v for v in pod.workload.pod_spec.get("volumes", [])}
        claims.add(volumes.get("data", {}).get("persistentVolumeClaim", {}).get("claimName"))
    return claims.pop() if len(pods) > 1 and len(claims) == 1 and None not in claims else None
