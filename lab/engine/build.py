# Copyright: scratchbird.cluster contributors
# Apache License 2.0 (see LICENSE)
"""Build the stand-in engine artifact (dev/lab only).

    python lab/engine/build.py --version 1.0.0 --out DIR [--fault unhealthy]

writes DIR/scratchbird-engine-<version>.tar.gz and its .sha256 (sha256sum
format).  Layout:

    scratchbird-engine-<version>/
        VERSION                   first line: the version; "fault: <name>" line if any
        README
        bin/scratchbird-engine    zipapp (#!/usr/bin/env python3): engine, the chrony and
                                  engine_schema module_utils, pure-Python PyYAML
        bin/tx-engine, bin/ingestion-engine, bin/olap-shard, bin/clock-master
                                  -> scratchbird-engine (symlinks)
        licenses/PyYAML.txt

The same inputs always give the same bytes: fixed mtimes, owners and order in
both the zip and the tar, and a gzip header without name or time.
"""

import argparse
import gzip
import hashlib
import importlib.metadata
import io
import os
import re
import sys
import tarfile
import time
import zipfile

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(os.path.dirname(HERE))
ENGINE_SOURCE = os.path.join(HERE, "scratchbird_engine.py")
# The collection's module_utils the engine uses, embedded unchanged as scratchbird_<name>.py
# (where scratchbird_engine._load_module_util() looks first).
CHRONY_SOURCE = os.path.join(REPO, "plugins", "module_utils", "chrony.py")
SCHEMA_SOURCE = os.path.join(REPO, "plugins", "module_utils", "engine_schema.py")

sys.path.insert(0, HERE)
import scratchbird_engine as engine  # noqa: E402  (tier names, faults, program name)
import yaml  # noqa: E402  (the build interpreter's PyYAML gets bundled)

# Fixed timestamp for every archive member (override with SOURCE_DATE_EPOCH).
EPOCH = int(os.environ.get("SOURCE_DATE_EPOCH", "1704067200"))  # 2024-01-01T00:00:00Z
VERSION_RE = re.compile(r"^[0-9A-Za-z][0-9A-Za-z.+_~-]{0,63}$")

MAIN_PY = """import sys

import scratchbird_engine

sys.exit(scratchbird_engine.main())
"""

README = """scratchbird-engine {version} -- STAND-IN, NOT A DATABASE.

A small dev/lab program that honours the ScratchBird cluster deployment
contract (config files, ports, /health /ready /metrics, systemd Type=notify)
so the scratchbird.cluster roles can be tested without the operator's real
engines.  It stores nothing and answers no queries.

Run bin/<tier> --help (tiers: {tiers}).  Needs only python3 (3.8+).
See docs/standin-engine.md in the scratchbird.cluster collection.
"""


def read(path):
    with open(path, "rb") as handle:
        return handle.read()


def yaml_files():
    """(name inside the zip, bytes) for the pure-Python part of PyYAML."""
    package_dir = os.path.dirname(os.path.abspath(yaml.__file__))
    files = []
    for name in sorted(os.listdir(package_dir)):
        if name.endswith(".py"):
            files.append(("yaml/" + name, read(os.path.join(package_dir, name))))
    if "yaml/__init__.py" not in dict(files):
        raise SystemExit("build: %s does not look like PyYAML" % package_dir)
    return files


def yaml_license():
    try:
        dist = importlib.metadata.distribution("PyYAML")
    except importlib.metadata.PackageNotFoundError:
        return None
    for entry in dist.files or ():
        if os.path.basename(str(entry)).upper().startswith(("LICENSE", "COPYING")):
            return entry.read_binary()
    return None


def build_zipapp(version, fault):
    build_info = "VERSION = %r\nFAULT = %r\n" % (version, fault)
    members = [
        ("__main__.py", MAIN_PY.encode()),
        ("scratchbird_build_info.py", build_info.encode()),
        ("scratchbird_chrony.py", read(CHRONY_SOURCE)),
        ("scratchbird_engine.py", read(ENGINE_SOURCE)),
        ("scratchbird_engine_schema.py", read(SCHEMA_SOURCE)),
    ] + yaml_files()
    date_time = time.gmtime(EPOCH)[:6]
    buf = io.BytesIO()
    buf.write(b"#!/usr/bin/env python3\n")
    with zipfile.ZipFile(buf, "w") as zf:
        for name, data in members:
            info = zipfile.ZipInfo(name, date_time=date_time)
            info.compress_type = zipfile.ZIP_DEFLATED
            info.create_system = 3  # unix, so external_attr carries the mode
            info.external_attr = 0o100644 << 16
            zf.writestr(info, data, compresslevel=9)
    return buf.getvalue()


def _tarinfo(name, kind=tarfile.REGTYPE, mode=0o644, size=0, link=""):
    info = tarfile.TarInfo(name)
    info.type = kind
    info.mode = mode
    info.size = size
    info.linkname = link
    info.mtime = EPOCH
    info.uid = info.gid = 0
    info.uname = info.gname = "root"
    return info


def build_tarball(version, fault):
    top = "%s-%s" % (engine.PROGRAM, version)
    version_text = version + "\n" + ("fault: %s\n" % fault if fault else "")
    files = [
        ("VERSION", version_text.encode(), 0o644),
        ("README", README.format(version=version, tiers=", ".join(engine.TIERS)).encode(), 0o644),
        ("bin/" + engine.PROGRAM, build_zipapp(version, fault), 0o755),
    ]
    license_text = yaml_license()
    if license_text:
        files.append(("licenses/PyYAML.txt", license_text, 0o644))

    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w", format=tarfile.GNU_FORMAT) as tar:
        for directory in ("", "bin", "licenses"):
            tar.addfile(_tarinfo(("%s/%s" % (top, directory)).rstrip("/"), tarfile.DIRTYPE, 0o755))
        for name, data, mode in files:
            tar.addfile(_tarinfo("%s/%s" % (top, name), mode=mode, size=len(data)), io.BytesIO(data))
        for tier in engine.TIERS:
            tar.addfile(_tarinfo("%s/bin/%s" % (top, tier), tarfile.SYMTYPE, 0o777, link=engine.PROGRAM))
    return gzip.compress(raw.getvalue(), compresslevel=9, mtime=0)


def write_atomic(path, data):
    tmp = path + ".tmp"
    with open(tmp, "wb") as handle:
        handle.write(data)
    os.replace(tmp, path)


def main(argv=None):
    parser = argparse.ArgumentParser(description="Build the scratchbird stand-in engine artifact (dev/lab only).")
    parser.add_argument("--version", required=True, help="artifact version, e.g. 1.0.0")
    parser.add_argument("--out", required=True, metavar="DIR", help="output directory (created if missing)")
    parser.add_argument("--fault", choices=engine.FAULTS, help="bake in a fault (unhealthy: /health answers 503)")
    args = parser.parse_args(argv)
    if not VERSION_RE.match(args.version):
        parser.error("--version %r: use letters, digits and . + _ ~ - only" % args.version)

    data = build_tarball(args.version, args.fault)
    os.makedirs(args.out, exist_ok=True)
    name = "%s-%s.tar.gz" % (engine.PROGRAM, args.version)
    path = os.path.join(args.out, name)
    digest = hashlib.sha256(data).hexdigest()
    write_atomic(path, data)
    write_atomic(path + ".sha256", ("%s  %s\n" % (digest, name)).encode())
    print(path)
    print("sha256 %s" % digest)
    return 0


if __name__ == "__main__":
    sys.exit(main())
