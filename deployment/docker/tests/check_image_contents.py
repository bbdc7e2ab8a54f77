#!/usr/bin/env python3
"""What a scanner sees in each built image, checked on the images themselves.

Per image: syft (reading the crate lists cargo-auditable embedded) finds every crate that
`cargo tree -e normal,no-proc-macro` says the image's binaries (the service and its probe) are built from; `cargo audit bin` finds no vulnerability in them; the SBOM written with the
image (build/sbom/<image>.cdx.json) is the one whose digest the image's label names, lists the
same crates with their licences, glibc and the CA bundle; the OCI labels created and base.name.
And the negative cases, so neither check can pass vacuously: the probe binary without its
.dep-v0 section (what a plain `cargo build` produces) is caught, syft finding no crate in it; and
an advisory added to a copy of the database for a crate in that binary is reported by name.

Ends with `image-contents: N passed, N failed`; exit 1 on any failure.
"""
import argparse
import datetime
import hashlib
import json
import os
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

TARGET = "x86_64-unknown-linux-gnu"
PROBE = "probe"


class Checks:
    def __init__(self):
        self.passed = 0
        self.failed = 0

    def expect(self, ok, what, detail=""):
        if ok:
            self.passed += 1
            print(f"PASS  {what}")
        else:
            self.failed += 1
            print(f"FAIL  {what}: {detail}")


def run(cmd, **kw):
    return subprocess.run(cmd, check=True, capture_output=True, text=True, **kw).stdout


def syft_crates(syft, source):
    """(name, version) of every Rust crate syft finds in SOURCE (docker:IMAGE or dir:FOLDER)."""
    env = dict(os.environ, SYFT_CHECK_FOR_APP_UPDATE="false")
    doc = json.loads(run([syft, "scan", "--quiet", source, "-o", "syft-json"], env=env))
    return {(a["name"], a["version"]) for a in doc["artifacts"] if a["type"] == "rust-crate"}


def cargo_tree_crates(packages):
    """(name, version) of the crates linked into PACKAGES' binaries. Proc macros (and what only
    they use) run in the compiler and are not in a binary, nor in its auditable data."""
    cmd = ["cargo", "tree", "--locked", "-e", "normal,no-proc-macro", "--target", TARGET,
           "--prefix", "none", "-f", "{p}"]
    for p in packages:
        cmd += ["-p", p]
    crates = set()
    for line in run(cmd).splitlines():
        parts = line.split()
        if len(parts) >= 2 and parts[1].startswith("v"):
            crates.add((parts[0], parts[1][1:]))
    return crates


def missing_crates(expected, found):
    """The check itself: every expected crate is found (and something was found at all)."""
    if not found:
        return sorted(expected) or [("<nothing found>", "")]
    return sorted(expected - found)


def fmt(crates, limit=8):
    shown = ", ".join(f"{n} {v}".strip() for n, v in crates[:limit])
    return shown + (f" and {len(crates) - limit} more" if len(crates) > limit else "")


def accepted_advisories(deny_toml):
    with open(deny_toml, "rb") as f:
        ignores = tomllib.load(f).get("advisories", {}).get("ignore", [])
    return [i["id"] if isinstance(i, dict) else i for i in ignores]


def audit_bin(binaries, advisory_db, ignores):
    """Vulnerabilities cargo audit bin finds, as 'crate version: RUSTSEC-id (title)' lines, or
    None and the error when it could not judge. One binary a run: each prints its own report."""
    cmd = ["cargo", "audit", "--json"]
    if advisory_db:
        cmd += ["--db", advisory_db, "--no-fetch"]
    for i in ignores:
        cmd += ["--ignore", i]
    found = []
    for binary in binaries:
        proc = subprocess.run(cmd + ["bin", str(binary)], capture_output=True, text=True)
        try:
            report = json.loads(proc.stdout)
        except json.JSONDecodeError:
            return None, [f"{binary.name}: " + (proc.stderr.strip().splitlines() or [f"exit {proc.returncode}"])[-1]]
        found += [f"{binary.name}: {v['package']['name']} {v['package']['version']} {v['advisory']['id']} ({v['advisory']['title']})"
                  for v in report["vulnerabilities"]["list"]]
    return len(found), found


def planted_advisory_db(advisory_db, work, crate):
    """A copy of ADVISORY_DB with one made-up advisory against every version of CRATE."""
    copy = work / "advisory-db-planted"
    shutil.copytree(advisory_db, copy, ignore=shutil.ignore_patterns(".git"))
    (copy / "crates" / crate).mkdir(parents=True, exist_ok=True)
    (copy / "crates" / crate / "RUSTSEC-2000-9999.md").write_text(f"""```toml
[advisory]
id = "RUSTSEC-2000-9999"
package = "{crate}"
date = "2000-01-01"

[versions]
patched = []
```

# Planted by the container check to see cargo audit bin fail
""")
    return copy


def sbom_crates(bom):
    crates, unlicensed = set(), []
    for c in bom["components"]:
        if c.get("purl", "").startswith("pkg:cargo/"):
            crates.add((c["name"], c["version"]))
            if not c.get("licenses"):
                unlicensed.append((c["name"], c["version"]))
    return crates, unlicensed


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--images", nargs="+", required=True)
    ap.add_argument("--prefix", default="abn-stack")
    ap.add_argument("--tag", required=True)
    ap.add_argument("--bin-dir", required=True, type=Path, help="the binaries the images were built from")
    ap.add_argument("--sbom-dir", required=True, type=Path)
    ap.add_argument("--syft", required=True)
    ap.add_argument("--advisory-db", default=os.environ.get("ADVISORY_DB") or None)
    ap.add_argument("--deny-toml", default="deny.toml")
    ap.add_argument("--epoch", type=int, required=True, help="SOURCE_DATE_EPOCH of the build")
    ap.add_argument("--work", required=True, type=Path)
    args = ap.parse_args()
    checks = Checks()
    created = datetime.datetime.fromtimestamp(args.epoch, datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
    ignores = accepted_advisories(args.deny_toml)

    for name in args.images:
        image = f"{args.prefix}/{name}:{args.tag}"
        binaries = [name, PROBE]
        found = syft_crates(args.syft, f"docker:{image}")
        expected = cargo_tree_crates(binaries)
        missing = missing_crates(expected, found)
        checks.expect(not missing, f"{name}: syft finds {len(found)} crates in the image, all {len(expected)} of cargo tree ({' + '.join(binaries)})",
                      f"missing {fmt(missing)}")

        count, vulns = audit_bin([args.bin_dir / b for b in binaries], args.advisory_db, ignores)
        checks.expect(count == 0, f"{name}: cargo audit bin: 0 vulnerabilities in {' and '.join(binaries)}",
                      "; ".join(vulns) if count else f"cargo audit failed: {'; '.join(vulns)}")

        labels = json.loads(run(["docker", "image", "inspect", "--format", "{{json .Config.Labels}}", image]))
        sbom_path = args.sbom_dir / f"{name}.cdx.json"
        digest = "sha256:" + hashlib.sha256(sbom_path.read_bytes()).hexdigest()
        checks.expect(labels.get("io.abn-stack.sbom.digest") == digest,
                      f"{name}: label io.abn-stack.sbom.digest is the digest of {sbom_path}",
                      f"label {labels.get('io.abn-stack.sbom.digest')}, file {digest}")
        checks.expect(labels.get("org.opencontainers.image.created") == created
                      and labels.get("org.opencontainers.image.base.name") == "scratch",
                      f"{name}: labels created={created} (SOURCE_DATE_EPOCH), base.name=scratch",
                      f"created={labels.get('org.opencontainers.image.created')}, base.name={labels.get('org.opencontainers.image.base.name')}")

        bom = json.loads(sbom_path.read_text())
        in_sbom, unlicensed = sbom_crates(bom)
        debian = {c["name"]: c.get("version") for c in bom["components"] if c.get("purl", "").startswith("pkg:deb/")}
        problems = []
        if in_sbom != found:
            problems.append(f"crates differ from the image's: only in the SBOM {fmt(sorted(in_sbom - found))}; only in the image {fmt(sorted(found - in_sbom))}")
        if unlicensed:
            problems.append(f"no licence: {fmt(unlicensed)}")
        if not debian.get("glibc") or not debian.get("ca-certificates"):
            problems.append(f"Debian components {debian}, want glibc and ca-certificates")
        if bom.get("bomFormat") != "CycloneDX":
            problems.append(f"bomFormat {bom.get('bomFormat')!r}")
        checks.expect(not problems, f"{name}: SBOM lists the image's {len(in_sbom)} crates with licences, glibc {debian.get('glibc')}, ca-certificates {debian.get('ca-certificates')}",
                      "; ".join(problems))

    # The negative case: the probe without the auditable data, scanned by the same comparison.
    plain = args.work / "plain" / "usr" / "local" / "bin"
    plain.mkdir(parents=True, exist_ok=True)
    run(["objcopy", "--remove-section=.dep-v0", str(args.bin_dir / PROBE), str(plain / PROBE)])
    found = syft_crates(args.syft, f"dir:{args.work / 'plain'}")
    missing = missing_crates(cargo_tree_crates([PROBE]), found)
    checks.expect(bool(missing) and not found,
                  f"negative: {PROBE} without .dep-v0 (a plain cargo build) is caught: syft finds {len(found)} crates, the check reports {len(missing)} missing",
                  f"syft found {len(found)} crates, missing {len(missing)}")
    shutil.rmtree(args.work / "plain")

    # An advisory planted for a crate of the probe must fail the audit, naming crate and advisory.
    db = args.advisory_db or str(Path.home() / ".cargo" / "advisory-db")
    if Path(db, "crates").is_dir():
        planted = planted_advisory_db(db, args.work, "ureq")
        count, vulns = audit_bin([args.bin_dir / PROBE], str(planted), [])
        checks.expect(count == 1 and "ureq" in vulns[0] and "RUSTSEC-2000-9999" in vulns[0],
                      f"negative: an advisory planted for ureq fails cargo audit bin: {'; '.join(vulns)}",
                      f"{count} found: {'; '.join(vulns)}")
        shutil.rmtree(planted)
    else:
        checks.expect(False, "negative: planted advisory", f"no advisory database at {db}")

    print(f"image-contents: {checks.passed} passed, {checks.failed} failed")
    return 1 if checks.failed else 0


if __name__ == "__main__":
    sys.exit(main())
