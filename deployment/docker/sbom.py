#!/usr/bin/env python3
"""Writes the CycloneDX SBOM of one image from what syft read in the image's files.

syft (run by scripts/build-images.sh on a folder laid out as the image) lists the crates that
cargo-auditable embedded in each binary. This adds what syft cannot see: each crate's licence
(from `cargo metadata`), the glibc linked statically into the binaries (the build host's Debian
libc6-dev) and the CA bundle (Debian's ca-certificates). The output is deterministic, so that the
same commit gives the same SBOM, the same digest in the image label and the same image ID: no
clock time (SOURCE_DATE_EPOCH), a serial number derived from the content, sorted components, and
the scanned folder's path replaced by the image's name (not its tag or prefix: a tag does not
change what is in an image).
"""
import argparse
import datetime
import hashlib
import json
import sys
import uuid

# Licences of the two Debian packages, from their debian/copyright files: glibc is LGPL-2.1+
# (libc.a is what a static binary links), the certificates are Mozilla's data under MPL-2.0.
GLIBC_LICENSE = "LGPL-2.1-or-later"
CA_LICENSE = "MPL-2.0"


def crate_licences(metadata):
    return {(p["name"], p["version"]): p.get("license") for p in metadata["packages"]}


def debian_component(name, package, version, arch, licence, description):
    purl = f"pkg:deb/debian/{package}@{version}?arch={arch}"
    return {
        "bom-ref": purl,
        "type": "library" if name == "glibc" else "data",
        "name": name,
        "version": version,
        "description": description,
        "licenses": [{"license": {"id": licence}}],
        "purl": purl,
    }


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--syft", required=True, help="syft's cyclonedx-json of the image's files")
    ap.add_argument("--metadata", required=True, help="cargo metadata --format-version 1 output")
    ap.add_argument("--image", required=True, help="the image's name without registry prefix or tag (its title label), e.g. backend-api")
    ap.add_argument("--version", required=True)
    ap.add_argument("--epoch", type=int, required=True, help="SOURCE_DATE_EPOCH")
    ap.add_argument("--glibc-version", required=True, help="Debian version of libc6-dev")
    ap.add_argument("--ca-version", required=True, help="Debian version of ca-certificates")
    ap.add_argument("--out", required=True)
    args = ap.parse_args()

    with open(args.syft) as f:
        bom = json.load(f)
    with open(args.metadata) as f:
        licences = crate_licences(json.load(f))

    crates = [c for c in bom.get("components", []) if c.get("purl", "").startswith("pkg:cargo/")]
    unknown = []
    for c in crates:
        licence = licences.get((c["name"], c.get("version")))
        if licence:
            c["licenses"] = [{"expression": licence}]
        else:
            unknown.append(f"{c['name']} {c.get('version')}")
    if unknown:
        print(f"sbom: no licence in cargo metadata for {', '.join(unknown)}", file=sys.stderr)
        return 1
    others = [c for c in bom.get("components", []) if c not in crates]
    others.append(debian_component("glibc", "libc6-dev", args.glibc_version, "amd64", GLIBC_LICENSE,
                                   "GNU C library, linked statically into every binary (libc.a)"))
    others.append(debian_component("ca-certificates", "ca-certificates", args.ca_version, "all", CA_LICENSE,
                                   "CA bundle at /etc/ssl/certs/ca-certificates.crt"))
    bom["components"] = sorted(crates + others, key=lambda c: (c.get("purl", ""), c.get("name", ""), c.get("bom-ref", "")))
    if "dependencies" in bom:
        bom["dependencies"] = sorted(bom["dependencies"], key=lambda d: d.get("ref", ""))

    created = datetime.datetime.fromtimestamp(args.epoch, datetime.timezone.utc)
    meta = bom.setdefault("metadata", {})
    meta["timestamp"] = created.strftime("%Y-%m-%dT%H:%M:%SZ")
    meta["component"] = {
        "bom-ref": f"{args.image}:{args.version}",
        "type": "container",
        "name": args.image,
        "version": args.version,
    }
    bom.pop("serialNumber", None)
    content = json.dumps(bom, sort_keys=True, separators=(",", ":")).encode()
    bom["serialNumber"] = f"urn:uuid:{uuid.UUID(hashlib.sha256(content).hexdigest()[:32], version=4)}"
    with open(args.out, "w") as f:
        json.dump(bom, f, indent=2, sort_keys=True)
        f.write("\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
