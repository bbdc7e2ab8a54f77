"""What the rehearsal runs: the umbrella rendered for default, dev and prod values (the same
renderer as the chart checks), or what the Ansible playbook's render path handed Helm for dev and
prod (build/ansible-render/<env>.yaml, written by `ansible-playbook ... --tags render`)."""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit

import yaml

import render

SOURCES = ("default", "dev", "prod", "ansible-dev", "ansible-prod")
ANSIBLE_RENDERS = render.REPO_ROOT / "build" / "ansible-render"
NAMESPACES = {"default": "abn-stack", "dev": "abn-stack-dev", "prod": "abn-stack-prod"}


def release_objects(source: str, extra_values: dict[str, Any] | None = None) -> list[dict[str, Any]]:
    if source.startswith("ansible-"):
        assert extra_values is None, "the playbook's render has its own values"
        path = ANSIBLE_RENDERS / f"{source.removeprefix('ansible-')}.yaml"
        if not path.is_file():
            raise FileNotFoundError(f"{path}: run the playbook's render path first (scripts/check-deploy.sh does)")
        return [doc for doc in yaml.safe_load_all(path.read_text()) if doc]
    files = [] if source == "default" else [render.env_values_file(source)]
    return render.render_objects(render.UMBRELLA, files, release=render.RELEASE, namespace=NAMESPACES[source],
                                 extra_values=extra_values)


def provider_mode(objects: list[dict[str, Any]]) -> tuple[str, str]:
    """Where backend-api's EXTERNAL_LOGS_URL points: ("release", url) for the release's own
    log-provider (dev), ("external", url) for a real provider outside it (prod), ("off", "") when
    the integration is not configured (the chart defaults)."""
    services = {o["metadata"]["name"] for o in objects if o["kind"] == "Service"}
    for obj in objects:
        if obj["kind"] != "Deployment" or obj["metadata"]["name"].endswith("log-provider"):
            continue
        for container in obj["spec"]["template"]["spec"]["containers"]:
            for var in container.get("env") or []:
                if var["name"] == "EXTERNAL_LOGS_URL":
                    host = urlsplit(var["value"]).hostname or ""
                    return ("release" if host.split(".")[0] in services else "external"), var["value"]
    return "off", ""
