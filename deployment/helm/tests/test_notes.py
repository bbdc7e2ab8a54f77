"""The umbrella's NOTES.txt: the manual step before an upgrade Kubernetes does not apply in place,
and the deprecation warning for a value still set under its old name (docs/compatibility.md)."""

from __future__ import annotations

import pytest

import render


def notes(extra: dict | None = None) -> str:
    manifests = render.render(render.UMBRELLA, [render.env_values_file("dev")], namespace="abn-stack-dev", extra_values=extra)
    return next(text for path, text in manifests.items() if path.endswith("NOTES.txt"))


def test_notes_give_the_orphan_delete_before_a_claim_change() -> None:
    assert "kubectl -n abn-stack-dev delete statefulset abn-stack-data-api --cascade=orphan" in notes()


@pytest.mark.parametrize("chart", ["backend-api", "data-api"])
def test_a_deprecated_value_is_named_in_the_notes(chart: str) -> None:
    assert "DEPRECATED" not in notes()
    text = notes({chart: {"config": {"extraEnv": {"EXTRA": "1"}}}})
    assert f"DEPRECATED: {chart}.config.extraEnv (a map)" in text and f"{chart}.extraEnv" in text
