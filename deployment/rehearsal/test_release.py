"""`make release` (scripts/release.sh) over the images the upgrade area just built
(RELEASE_SKIP_BUILD=1, IMAGE_TAG as scripts/check-upgrade.sh sets it): every file is in
SHA256SUMS and `sha256sum -c` verifies them (and catches one flipped byte); each image archive
holds exactly the engine's image; the packaged charts install-render: the packaged umbrella gives
the same objects as the working tree's chart for dev and prod values, and each packaged subchart
renders with its defaults."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import tarfile
from pathlib import Path

import docker
import pytest
import yaml

import render

IMAGES = ("backend-api", "data-api", "health-check", "log-provider")


def _version() -> str:
    return yaml.safe_load((render.UMBRELLA / "Chart.yaml").read_text())["appVersion"]


@pytest.fixture(scope="module")
def release(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("release") / "out"
    env = {**os.environ, "RELEASE_SKIP_BUILD": "1", "RELEASE_OUT": str(out)}
    done = subprocess.run([str(render.REPO_ROOT / "scripts" / "release.sh")], env=env, capture_output=True, text=True,
                          timeout=900)
    assert done.returncode == 0, done.stderr[-3000:]
    assert done.stdout.strip() == str(out), done.stdout
    return out


def test_every_file_is_summed_and_verifies(release: Path, tmp_path: Path) -> None:
    listed = sorted(line.split("  ", 1)[1] for line in (release / "SHA256SUMS").read_text().splitlines())
    present = sorted(str(p.relative_to(release)) for p in release.rglob("*") if p.is_file() and p.name != "SHA256SUMS")
    assert listed == present
    tag = os.environ.get("IMAGE_TAG") or _version()
    assert {f"images/{b}-{tag}.tar" for b in IMAGES} | {f"sbom/{b}.cdx.json" for b in IMAGES} <= set(listed), listed
    assert {p for p in listed if p.startswith("charts/")} == {
        f"charts/{name}-{yaml.safe_load((render.UMBRELLA.parent / name / 'Chart.yaml').read_text())['version']}.tgz"
        for name in ("abn-common", "backend-api", "data-api", "abn-stack")}
    assert f"## {_version()}" in (release / "CHANGELOG.md").read_text().splitlines()[0]
    ok = subprocess.run(["sha256sum", "-c", "SHA256SUMS"], cwd=release, capture_output=True, text=True)
    assert ok.returncode == 0, ok.stdout + ok.stderr
    copy = tmp_path / "copy"
    shutil.copytree(release, copy)
    sbom = copy / "sbom" / "data-api.cdx.json"
    data = bytearray(sbom.read_bytes())
    data[len(data) // 2] ^= 0x01
    sbom.write_bytes(bytes(data))
    bad = subprocess.run(["sha256sum", "-c", "SHA256SUMS"], cwd=copy, capture_output=True, text=True)
    assert bad.returncode == 1 and "sbom/data-api.cdx.json: FAILED" in bad.stdout, bad.stdout


def test_each_image_archive_is_the_engine_image(release: Path) -> None:
    client = docker.from_env()
    tag = os.environ.get("IMAGE_TAG") or _version()
    for b in IMAGES:
        with tarfile.open(release / "images" / f"{b}-{tag}.tar") as archive:
            manifest = json.load(archive.extractfile("manifest.json"))  # type: ignore[arg-type]
        assert len(manifest) == 1 and manifest[0]["RepoTags"] == [f"abn-stack/{b}:{tag}"], manifest
        config = manifest[0]["Config"]
        digest = "sha256:" + config.removeprefix("blobs/sha256/").removesuffix(".json")
        assert digest == client.images.get(f"abn-stack/{b}:{tag}").id, (b, config)


@pytest.mark.parametrize("env", render.ENVIRONMENTS)
def test_the_packaged_umbrella_renders_as_the_chart(release: Path, env: str) -> None:
    version = yaml.safe_load((render.UMBRELLA / "Chart.yaml").read_text())["version"]
    files = [render.env_values_file(env)]
    packaged = render.render_objects(release / "charts" / f"abn-stack-{version}.tgz", files, namespace=f"abn-stack-{env}")
    render.build_dependencies(render.UMBRELLA)
    source = render.render_objects(render.UMBRELLA, files, namespace=f"abn-stack-{env}")
    # Every object the same, but the dev log-provider's TLS Secret's data: genCA makes a new CA on
    # each offline render (the keys are compared; in a cluster lookup keeps the existing one).
    assert render.comparable(packaged) == render.comparable(source)
    assert [o["metadata"]["name"] for o in packaged if render.generated(o)] == (
        ["abn-stack-log-provider-tls"] if env == "dev" else [])
    assert {o["kind"] for o in packaged} >= {"Deployment", "StatefulSet", "Job"}


@pytest.mark.parametrize("chart", ("backend-api", "data-api"))
def test_each_packaged_subchart_renders_alone(release: Path, chart: str) -> None:
    version = yaml.safe_load((render.UMBRELLA.parent / chart / "Chart.yaml").read_text())["version"]
    objects = render.render_objects(release / "charts" / f"{chart}-{version}.tgz", namespace="abn-stack")
    assert any(o["kind"] in ("Deployment", "StatefulSet") for o in objects), [o["kind"] for o in objects]
