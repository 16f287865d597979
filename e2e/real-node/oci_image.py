#!/usr/bin/env python3
"""Writes the real node's own small images as one-layer OCI archives.

Used by e2e/real-node/node.sh for the probe image (busybox-static from Debian, for
e2e/real-node-smoke.sh) and, only when scripts/build-images.sh is absent, for a
fallback pause image. The project's images come from scripts/build-images.sh.

    oci_image.py OUT.tar REFERENCE ENTRYPOINT_JSON FILE... [--link PATH=TARGET]... [--busybox]

FILE is SOURCE:PATH_IN_IMAGE (mode copied from SOURCE). --busybox adds /bin/<applet>
symlinks for every applet of /bin/busybox. The index names the image with
io.containerd.image.name (what `ctr images import` uses) and
org.opencontainers.image.ref.name. Fixed times and owners make the same inputs give the
same bytes, so the node can skip importing an unchanged archive.
"""

import gzip
import hashlib
import io
import json
import os
import subprocess
import sys
import tarfile


def _info(name, kind, size=0, mode=0o755, target=""):
    info = tarfile.TarInfo(name)
    info.type = kind
    info.size = size
    info.mode = mode
    info.linkname = target
    info.mtime = 0
    info.uid = info.gid = 0
    info.uname = info.gname = ""
    return info


def layer(files, links):
    """The layer tar (uncompressed) holding files and links plus their parent dirs."""
    dirs = set()
    for path in [p for _, p in files] + [p for p, _ in links] + ["tmp"]:
        parts = path.strip("/").split("/")
        for i in range(1, len(parts)):
            dirs.add("/".join(parts[:i]))
    dirs.add("tmp")
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for d in sorted(dirs):
            tar.addfile(_info(d, tarfile.DIRTYPE, mode=0o1777 if d == "tmp" else 0o755))
        for src, path in sorted(files, key=lambda f: f[1]):
            data = open(src, "rb").read()
            mode = os.stat(src).st_mode & 0o7777
            tar.addfile(_info(path.strip("/"), tarfile.REGTYPE, len(data), mode), io.BytesIO(data))
        for path, target in sorted(links):
            tar.addfile(_info(path.strip("/"), tarfile.SYMTYPE, mode=0o777, target=target))
    return buf.getvalue()


def blob(tar, data):
    digest = hashlib.sha256(data).hexdigest()
    tar.addfile(_info(f"blobs/sha256/{digest}", tarfile.REGTYPE, len(data), 0o644), io.BytesIO(data))
    return {"digest": f"sha256:{digest}", "size": len(data)}


def main(argv):
    out, ref, entrypoint = argv[0], argv[1], json.loads(argv[2])
    files, links, rest = [], [], argv[3:]
    while rest:
        arg = rest.pop(0)
        if arg == "--link":
            path, target = rest.pop(0).split("=", 1)
            links.append((path, target))
        elif arg == "--busybox":
            applets = subprocess.run(["/bin/busybox", "--list"], capture_output=True, text=True, check=True)
            links += [(f"bin/{a}", "busybox") for a in applets.stdout.split() if a != "busybox"]
        else:
            src, path = arg.split(":", 1)
            files.append((src, path))
    raw = layer(files, links)
    gz = gzip.compress(raw, mtime=0)
    diff_id = "sha256:" + hashlib.sha256(raw).hexdigest()
    config = {
        "architecture": "amd64",
        "os": "linux",
        "created": "1970-01-01T00:00:00Z",
        "config": {"Entrypoint": entrypoint, "Env": ["PATH=/bin"], "WorkingDir": "/"},
        "rootfs": {"type": "layers", "diff_ids": [diff_id]},
    }
    tmp = out + ".tmp"
    with tarfile.open(tmp, "w", format=tarfile.PAX_FORMAT) as tar:
        cfg = blob(tar, json.dumps(config, sort_keys=True).encode())
        lay = blob(tar, gz)
        manifest = {
            "schemaVersion": 2,
            "mediaType": "application/vnd.oci.image.manifest.v1+json",
            "config": {"mediaType": "application/vnd.oci.image.config.v1+json", **cfg},
            "layers": [{"mediaType": "application/vnd.oci.image.layer.v1.tar+gzip", **lay}],
        }
        man = blob(tar, json.dumps(manifest, sort_keys=True).encode())
        index = {
            "schemaVersion": 2,
            "manifests": [{
                "mediaType": "application/vnd.oci.image.manifest.v1+json",
                **man,
                "annotations": {"io.containerd.image.name": ref, "org.opencontainers.image.ref.name": ref},
            }],
        }
        for name, data in (("oci-layout", b'{"imageLayoutVersion":"1.0.0"}'),
                           ("index.json", json.dumps(index, sort_keys=True).encode())):
            tar.addfile(_info(name, tarfile.REGTYPE, len(data), 0o644), io.BytesIO(data))
    os.replace(tmp, out)


if __name__ == "__main__":
    main(sys.argv[1:])
