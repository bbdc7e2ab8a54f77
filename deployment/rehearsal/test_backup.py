"""data-api's scheduled backup (backup.enabled), rehearsed: the chart defaults in shared mode (two
replicas on one claim) with the backup CronJob (the defaults: no in-release provider, so no key
rotation step, which is not what this test is about). After the rehearsal's writes and rollout, one run
of the rendered CronJob's job template copies the records claim (mounted read-only) to the
backup claim while both replicas still serve; the copy must hold every record any replica
acknowledged, and `data-api restore` of it into an empty folder (the same image, the backup claim
mounted read-only) must verify it: manifest sizes and SHA-256, every line a record, ids unique.

Needs the data-api image of this tree: IMAGE_TAG (as scripts/build-images.sh) picks its tag, the
chart's appVersion by default. Each run removes what it created.
"""

from __future__ import annotations

import io
import json
import os
import re
import tarfile

import docker
import pytest
import yaml

import render
import sources
from kubelet import PodFailed
from rehearsal import Rehearsal

BACKUP_CLAIM = "abn-stack-data-api-backup"
BACKUP_DIR = "/var/data/backup"


@pytest.fixture(scope="session")
def engine() -> docker.DockerClient:
    render.build_dependencies(render.UMBRELLA)
    return docker.from_env()


def app_version() -> str:
    return yaml.safe_load((render.UMBRELLA / "Chart.yaml").read_text())["appVersion"]


def records_in(tar_bytes: bytes) -> list[dict]:
    """Every record line of every segment in a backup tar."""
    records = []
    with tarfile.open(fileobj=io.BytesIO(tar_bytes)) as archive:
        for member in archive.getmembers():
            if re.search(r"/segment-\d{20}(\.v\d+)?\.jsonl$", member.name):
                data = archive.extractfile(member).read()
                records += [json.loads(line) for line in data.splitlines() if line.strip()]
    return records


def test_the_backup_cronjob_copies_every_acknowledged_record_and_the_copy_restores(engine: docker.DockerClient) -> None:
    tag = os.environ.get("IMAGE_TAG") or app_version()
    values = {"data-api": {"image": {"tag": tag}, "replicaCount": 2, "persistence": {"shared": {"enabled": True}},
                           "backup": {"enabled": True, "retention": 2}}}
    objects = sources.release_objects("default", values)
    checked: dict[str, object] = {}

    def backup_and_restore(rehearsal: Rehearsal) -> None:
        acknowledged = {i for ids in rehearsal.acknowledged.values() for i in ids}
        workload = next(w for w in rehearsal.workloads if w.kind == "CronJob" and w.name.endswith("data-api-backup"))
        running = rehearsal.kubelet.run_to_completion(workload)
        log = running.logs("backup")
        found = re.search(r"bytes to (\S+\.tar)", log)
        if not found:
            raise PodFailed(f"{running.name}: no copy named in its output: {log}")
        copy = found.group(1)
        records = records_in(rehearsal.kubelet.read_file(running, "backup", copy))
        rehearsal.kubelet.remove(running)
        ids = [r["id"] for r in records]
        missing = acknowledged - set(ids)
        if missing or len(ids) != len(set(ids)):
            raise PodFailed(f"{copy}: {len(missing)} of {len(acknowledged)} acknowledged records missing, "
                            f"{len(ids) - len(set(ids))} ids twice")
        # The real tool restores and verifies it: an empty folder (a tmpfs), the claim read-only.
        image = workload.pod_spec["containers"][0]["image"]
        output = engine.containers.run(
            image, ["restore", "--from", copy, "--log-dir", "/restored"], remove=True, network_disabled=True,
            user="65532:65532", read_only=True, tmpfs={"/restored": "uid=65532,gid=65532,mode=0700"},
            volumes={rehearsal.kubelet.claims[BACKUP_CLAIM]: {"bind": BACKUP_DIR, "mode": "ro"}},
            labels=rehearsal.kubelet.labels, stdout=True, stderr=True).decode()
        checked.update(acknowledged=len(acknowledged), copied=len(ids), copy=copy, restore=output.strip())
        rehearsal.result.checks.append(f"data-api backup {copy}: {len(ids)} records, every one of the "
                                       f"{len(acknowledged)} acknowledged; {output.strip()}")

    rehearsal = Rehearsal(objects, source="default-backup", provider=sources.provider_mode(objects), client=engine,
                          after_rollout=backup_and_restore)
    result = rehearsal.run()
    print("\n" + "\n".join(result.lines()))
    assert any("data-api-backup" in line and "job run exited 0" in line for line in result.pods), result.pods
    assert checked["acknowledged"] > 0 and checked["copied"] >= checked["acknowledged"], checked
    assert re.fullmatch(r"restore: 2 folders, \d+ segments, \d+ records, ok", checked["restore"]), checked
