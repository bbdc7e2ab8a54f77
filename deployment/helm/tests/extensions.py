"""The extension-point values (values/extensions.yaml) and the objects an operator creates before
installing them: the ConfigMap with the private CA bundle (values/private-ca.pem, a self-signed
test CA; its key was never kept) and the Secret with the egress proxy's URL."""

from __future__ import annotations

import base64
from pathlib import Path
from typing import Any

import yaml

HERE = Path(__file__).resolve().parent
VALUES_FILE = HERE / "values" / "extensions.yaml"
CA_BUNDLE = HERE / "values" / "private-ca.pem"
#: The proxy URL the operator's Secret holds (nothing listens there; no test calls out through it).
PROXY_URL = "http://proxy.invalid:3128"


def values() -> dict[str, Any]:
    return yaml.safe_load(VALUES_FILE.read_text())


def operator_objects(namespace: str) -> list[dict[str, Any]]:
    """What `kubectl create configmap/secret` would have made in the release's namespace."""
    return [
        {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "private-ca", "namespace": namespace},
         "data": {"ca.crt": CA_BUNDLE.read_text()}},
        {"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "egress-proxy", "namespace": namespace},
         "type": "Opaque", "data": {"https-proxy": base64.b64encode(PROXY_URL.encode()).decode()}},
    ]
