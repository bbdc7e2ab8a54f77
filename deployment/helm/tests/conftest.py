"""Shared fixtures: the subcharts are packaged once per session, renders are cached per input."""

from __future__ import annotations

import functools
import json
import sys
from pathlib import Path
from typing import Any

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))

import render  # noqa: E402  (sys.path above)

ENVS = ("default", "dev", "prod")
NAMESPACES = {"default": "abn-stack", "dev": "abn-stack-dev", "prod": "abn-stack-prod"}


def values_files(env: str) -> list[Path]:
    return [] if env == "default" else [render.env_values_file(env)]


@functools.lru_cache(maxsize=None)
def _render_cached(env: str, release: str, extra_json: str, api_versions: tuple[str, ...]) -> tuple[tuple[str, str], ...]:
    manifests = render.render(
        render.UMBRELLA,
        values_files(env),
        release=release,
        namespace=NAMESPACES[env],
        extra_values=json.loads(extra_json) if extra_json else None,
        api_versions=api_versions,
    )
    return tuple(sorted(manifests.items()))


def rendered(env: str, *, release: str = render.RELEASE, extra: dict[str, Any] | None = None,
             api_versions: tuple[str, ...] = ()) -> dict[str, str]:
    """{template path: text} of the umbrella for an environment (default = chart defaults only)."""
    return dict(_render_cached(env, release, json.dumps(extra, sort_keys=True) if extra else "", api_versions))


def objects(env: str, **kwargs: Any) -> list[dict[str, Any]]:
    return render.objects(rendered(env, **kwargs))


@pytest.fixture(scope="session", autouse=True)
def dependencies_built() -> None:
    render.build_dependencies(render.UMBRELLA)
