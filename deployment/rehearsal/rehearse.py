#!/usr/bin/env python3
"""Run the deploy rehearsal for one source by hand (scripts/check-deploy.sh runs them all):

    build/charts-venv/bin/python deployment/rehearsal/rehearse.py dev [-f extra-values.yaml]

Sources: default, dev, prod (the umbrella rendered with that environment's values), ansible-dev,
ansible-prod (the playbook's render, build/ansible-render/<env>.yaml). The images
abn-stack/*:<appVersion> must exist (scripts/build-images.sh). Exit 0 when every pod ran as it
must, 1 with the pod, the probe and its last log lines otherwise.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "helm" / "tests"))

import yaml  # noqa: E402

import render  # noqa: E402
import sources  # noqa: E402
from kubelet import PodFailed  # noqa: E402
from podspec import Unsupported  # noqa: E402
from rehearsal import Rehearsal  # noqa: E402


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("source", choices=sources.SOURCES)
    parser.add_argument("-f", "--values", help="one more values file on top of the source's")
    args = parser.parse_args()
    extra = yaml.safe_load(Path(args.values).read_text()) if args.values else None
    render.build_dependencies(render.UMBRELLA)
    objects = sources.release_objects(args.source, extra)
    try:
        result = Rehearsal(objects, source=args.source, provider=sources.provider_mode(objects)).run()
    except (PodFailed, Unsupported) as failure:
        print(f"rehearsal {args.source} FAILED: {failure}", file=sys.stderr)
        return 1
    print("\n".join(result.lines()))
    return 0


if __name__ == "__main__":
    sys.exit(main())
