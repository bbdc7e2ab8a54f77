#!/usr/bin/env python3
"""`helm package` for every abn-stack chart, through Helm's SDK (helm-python-sdk, no helm binary):
the library first, then the subcharts with their dependencies built, then the umbrella with its
own (the same order as deployment/helm/tests/render.py's build_dependencies).

    build/charts-venv/bin/python deployment/helm/tools/package_charts.py <destination folder>

Prints one archive path a line.
"""

from __future__ import annotations

import sys
from pathlib import Path

import helm_python as helm

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
import render  # noqa: E402

#: Every chart, in dependency order.
CHARTS = ("abn-common", "backend-api", "data-api", "abn-stack")


def package_all(destination: Path) -> list[Path]:
    destination.mkdir(parents=True, exist_ok=True)
    render.build_dependencies(render.UMBRELLA)
    helm_dir = render.UMBRELLA.parent
    return [Path(helm.package(helm_dir / chart, destination=destination)) for chart in CHARTS]


def main(argv: list[str]) -> int:
    if len(argv) != 2:
        print(__doc__, file=sys.stderr)
        return 2
    for archive in package_all(Path(argv[1])):
        print(archive)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
