"""The images' and binaries' own settings, for chart checks that must not restate them: the ENV
of each Dockerfile stage, the debug binaries (ABN_BIN_DIR, default target/debug), and the
defaults each binary declares in its --help."""

from __future__ import annotations

import functools
import os
import re
import subprocess
from pathlib import Path

from dockerfile_parse import DockerfileParser
from dockerfile_parse.util import extract_key_values

import render

DOCKERFILE = render.REPO_ROOT / "deployment" / "docker" / "Dockerfile"
BIN_DIR = Path(os.environ.get("ABN_BIN_DIR", render.REPO_ROOT / "target" / "debug"))
IMAGE_PREFIX = "abn-stack/"


@functools.lru_cache(maxsize=None)
def image_env(stage: str) -> dict[str, str]:
    """ENV of a Dockerfile stage, with what it inherits from the stages it is built FROM."""
    by_stage: dict[str, dict[str, str]] = {}
    current: dict[str, str] = {}
    for instruction in DockerfileParser(str(DOCKERFILE)).structure:
        if instruction["instruction"] == "FROM":
            words = instruction["value"].split()
            current = dict(by_stage.get(words[0], {}))
            if len(words) == 3 and words[1].upper() == "AS":
                by_stage[words[2]] = current
        elif instruction["instruction"] == "ENV":
            current.update(extract_key_values(env_replace=False, args={}, envs={}, instruction_value=instruction["value"]))
    assert stage in by_stage, f"no Dockerfile stage {stage!r}"
    return dict(by_stage[stage])


def name_of(image: str) -> str:
    """[<registry>/]abn-stack/<name>(:<tag>|@<digest>) -> <name>, the binary the image runs (its
    ENTRYPOINT)."""
    repository = image.split("@")[0]
    first, _, rest = repository.partition("/")
    if rest and ("." in first or ":" in first or first == "localhost"):
        repository = rest
    assert repository.startswith(IMAGE_PREFIX), image
    return repository[len(IMAGE_PREFIX):].split(":")[0]


def binary(name: str) -> Path:
    path = BIN_DIR / name
    assert path.is_file(), f"{path} is missing: cargo build --workspace --bins (or set ABN_BIN_DIR)"
    return path


@functools.lru_cache(maxsize=None)
def declared_defaults(name: str) -> dict[str, str]:
    """{variable: default} as the binary's --help states them ("[env: X=] [default: v]")."""
    text = subprocess.run([str(binary(name)), "--help"], capture_output=True, text=True, check=True,
                          env={}).stdout
    # One block per option: from its "  --flag" line to the next one.
    blocks = re.split(r"\n(?=\s+(?:-\w, )?--[a-z])", text)
    found = {}
    for block in blocks:
        env = re.search(r"\[env: ([A-Z0-9_]+)=", block)
        default = re.search(r"\[default: ([^\]]+)\]", block)
        if env and default:
            found[env.group(1)] = default.group(1)
    return found


def effective(name: str, container_env: dict[str, str], variable: str) -> str:
    """What a variable is in the running container: the pod's env over the image's ENV (already
    merged in container_env), else the binary's declared default."""
    if variable in container_env:
        return container_env[variable]
    return declared_defaults(name)[variable]
