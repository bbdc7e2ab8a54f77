"""The upgrade and rollback rehearsal (upgrade.py): the base release (scripts/release-base.sh:
its checkout and its images abn-stack/*:base-<sha>) installed with the dev values, upgraded to the
working tree's charts and images (IMAGE_TAG, the chart's appVersion by default), rolled back.
scripts/check-upgrade.sh sets RELEASE_BASE_DIR and RELEASE_BASE_TAG; without them the test fails,
saying so (it is never skipped as a pass)."""

from __future__ import annotations

import os
from pathlib import Path

import docker
import pytest
import yaml

import podspec
import render
import renderdiff
import upgrade


@pytest.fixture(scope="module")
def releases() -> tuple[list[dict], list[dict]]:
    base_dir, base_tag = os.environ.get("RELEASE_BASE_DIR"), os.environ.get("RELEASE_BASE_TAG")
    assert base_dir and base_tag, "RELEASE_BASE_DIR and RELEASE_BASE_TAG are unset: run scripts/check-upgrade.sh"
    head_tag = os.environ.get("IMAGE_TAG") or yaml.safe_load((render.UMBRELLA / "Chart.yaml").read_text())["appVersion"]
    base = upgrade.render_release(Path(base_dir) / "deployment" / "helm" / "abn-stack", base_tag)
    head = upgrade.render_release(render.UMBRELLA, head_tag)
    return base, head


def test_the_base_to_head_render_diff_is_clean(releases: tuple[list[dict], list[dict]]) -> None:
    base, head = releases
    assert renderdiff.refused_changes(base, head) == []
    assert renderdiff.refused_changes(head, base) == []
    # Each release with its own dev values mounts only Secrets its own chart makes (dev has no
    # operator Secret): none would be a stand-in.
    assert podspec.operator_secrets(base) == {} and podspec.operator_secrets(head) == {}


def test_each_release_is_rendered_with_its_own_checkouts_dev_values(tmp_path: Path) -> None:
    """<checkout>/deployment/configuration/dev/values.yaml beside <checkout>/deployment/helm/
    abn-stack, the working tree's only where a checkout has none. It once looked one folder too
    high, found nothing, and rendered the base with the working tree's values: the base's
    backend-api then read its CA from a Secret only the new chart makes, a stand-in here, and its
    config-check hook exited 2 (`EXTERNAL_LOGS_CA_FILE ... holds no PEM certificate`)."""
    umbrella = tmp_path / "deployment" / "helm" / "abn-stack"
    umbrella.mkdir(parents=True)
    assert upgrade.dev_values(umbrella) == render.env_values_file("dev")
    own = tmp_path / "deployment" / "configuration" / "dev" / "values.yaml"
    own.parent.mkdir(parents=True)
    own.write_text("{}\n")
    assert upgrade.dev_values(umbrella) == own
    assert upgrade.dev_values(render.UMBRELLA) == render.env_values_file("dev")


def test_upgrade_and_rollback_keep_every_record_and_the_history(releases: tuple[list[dict], list[dict]]) -> None:
    base, head = releases
    lines = upgrade.Upgrade(base, head, client=docker.from_env()).run()
    print("\n" + "\n".join(lines))
    hooks = [line for line in lines if "pre-upgrade hooks ran:" in line]
    assert hooks and "Job/abn-stack-backend-api-config-check" in hooks[0], lines
    # The dev Secrets (weight -10) were made before the Jobs that mount them.
    assert hooks[0].index("Secret/abn-stack-log-provider-tls") < hooks[0].index("Job/"), hooks[0]
    kept = [line for line in lines if "every acknowledged one kept" in line]
    assert [line.split(":")[0] for line in kept] == ["upgrade to the working tree", "rollback to the base release"], lines


def test_a_refused_change_stops_the_upgrade_before_anything_runs(releases: tuple[list[dict], list[dict]]) -> None:
    """The working tree rendered with a bigger data-api claim: the rehearsal fails at the render
    diff with the manual step, and starts no container."""
    base, _ = releases
    bigger = render.render_objects(render.UMBRELLA, [render.env_values_file("dev")], release=render.RELEASE,
                                   namespace="abn-stack-dev",
                                   extra_values=render.merge_values(upgrade.image_tags("unused"),
                                                                    {"data-api": {"persistence": {"size": "1Gi"}}}))
    with pytest.raises(upgrade.RefusedChange, match="--cascade=orphan") as refused:
        upgrade.Upgrade(base, bigger, client=NoEngine()).run()  # type: ignore[arg-type]
    assert "StatefulSet/abn-stack-data-api: volumeClaimTemplates changed (data size 256Mi -> 1Gi)" in str(refused.value)


class NoEngine:
    """A Docker client that fails the test on any use: nothing may start before the render diff."""

    def __getattr__(self, name: str) -> None:
        raise AssertionError(f"the engine was used ({name}) before the render diff refused the upgrade")
