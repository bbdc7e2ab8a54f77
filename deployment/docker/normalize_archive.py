#!/usr/bin/env python3
"""Rewrites a docker-archive from buildah without what differs from one build to the next.

buildah bud --timestamp fixes every time in the image, but its Docker-format config still names
the build container (a random ID and hostname) and the ID of the intermediate stage it started
from (`parent`, and "FROM <id>" in the history). Docker's image ID is the sha256 of the config,
so those make every build a new image. This drops them, writes the config as sorted compact
JSON, tags the image as asked, and writes the archive with sorted members, the layers untouched,
every time SOURCE_DATE_EPOCH and owner 0. `docker load` then gives the same ID for the same
inputs.
"""
import argparse
import hashlib
import io
import json
import sys
import tarfile


def clean_config(config):
    for key in ("container", "container_config", "parent"):
        config.pop(key, None)
    config.get("config", {}).pop("Hostname", None)
    for entry in config.get("history", []):
        entry.pop("comment", None)
    return json.dumps(config, sort_keys=True, separators=(",", ":")).encode()


def add(out, name, data, epoch):
    info = tarfile.TarInfo(name)
    info.size = len(data)
    info.mtime = epoch
    info.mode = 0o444
    out.addfile(info, io.BytesIO(data))


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("archive", help="buildah push IMAGE docker-archive:ARCHIVE")
    ap.add_argument("out")
    ap.add_argument("--tag", required=True, help="the one tag of the image, e.g. abn-stack/data-api:0.1.0")
    ap.add_argument("--epoch", type=int, required=True, help="SOURCE_DATE_EPOCH")
    args = ap.parse_args()

    with tarfile.open(args.archive) as src:
        (manifest,) = json.load(src.extractfile("manifest.json"))
        config = clean_config(json.load(src.extractfile(manifest["Config"])))
        layers = {name: src.extractfile(name).read() for name in manifest["Layers"]}

    config_name = hashlib.sha256(config).hexdigest() + ".json"
    new_manifest = [{"Config": config_name, "RepoTags": [args.tag], "Layers": manifest["Layers"]}]
    files = dict(layers)
    files[config_name] = config
    files["manifest.json"] = json.dumps(new_manifest, sort_keys=True, separators=(",", ":")).encode()
    with tarfile.open(args.out, "w", format=tarfile.USTAR_FORMAT) as out:
        for name in sorted(files):
            add(out, name, files[name], args.epoch)
    print("sha256:" + config_name[:-len(".json")])
    return 0


if __name__ == "__main__":
    sys.exit(main())
