"""Writes a one-layer OCI image archive, byte for byte the same for the same inputs.

The archive is an OCI image layout in a tar (oci-layout, index.json, blobs/sha256/...) that also
carries Docker's manifest.json, for `ctr images import` and `kind load image-archive` (and
`podman load` / `docker load`, which read that file). The index names the image with both `io.containerd.image.name`
(what containerd's importer uses) and `org.opencontainers.image.ref.name`, each the full
reference, so containerd holds exactly the name a pod spec resolves to. Every tar entry has a
fixed owner, time and order and gzip writes no name or time, which is what makes the output
deterministic and lets scripts/build-images.sh skip an image whose inputs did not change.
"""

import gzip
import hashlib
import io
import json
import os
import subprocess
import tarfile
import tempfile

EPOCH = 0
CREATED = "1970-01-01T00:00:00Z"
MT_INDEX = "application/vnd.oci.image.index.v1+json"
MT_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
MT_CONFIG = "application/vnd.oci.image.config.v1+json"
MT_LAYER = "application/vnd.oci.image.layer.v1.tar+gzip"


class Entry:
    """One path in the image's file system.

    kind is "file" (from `source`, or `data` bytes), "dir" or "symlink" (to `target`);
    `transform` names a change made to a copied file ("strip-debug" runs `strip --strip-debug`).
    """

    def __init__(self, path, kind, *, source=None, data=None, target=None, mode=None, uid=0,
                 gid=0, transform=None):
        self.path = path.strip("/")
        self.kind = kind
        self.source = source
        self.data = data
        self.target = target
        self.mode = mode if mode is not None else {"file": 0o644, "dir": 0o755, "symlink": 0o777}[kind]
        self.uid = uid
        self.gid = gid
        self.transform = transform

    def fingerprint(self):
        """What identifies this entry's content without building the layer."""
        content = None
        if self.kind == "file":
            content = _sha256_file(self.source) if self.source else hashlib.sha256(self.data).hexdigest()
        return [self.path, self.kind, self.mode, self.uid, self.gid, self.target, content, self.transform]


def _sha256_file(path):
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def with_parents(entries):
    """The entries plus a root-owned 0755 directory for every parent not listed, sorted."""
    by_path = {}
    for e in entries:
        by_path[e.path] = e
    for e in list(by_path.values()):
        parts = e.path.split("/")[:-1]
        for i in range(1, len(parts) + 1):
            parent = "/".join(parts[:i])
            by_path.setdefault(parent, Entry(parent, "dir"))
    return [by_path[p] for p in sorted(by_path)]


def _tarinfo(name, kind, size=0, mode=0o644, uid=0, gid=0, target=None):
    info = tarfile.TarInfo(name)
    info.type = {"file": tarfile.REGTYPE, "dir": tarfile.DIRTYPE, "symlink": tarfile.SYMTYPE}[kind]
    info.size = size
    info.mode = mode
    info.uid, info.gid = uid, gid
    info.uname = info.gname = ""
    info.mtime = EPOCH
    if target is not None:
        info.linkname = target
    return info


class _HashingWriter(io.RawIOBase):
    """Passes bytes on while hashing and counting them."""

    def __init__(self, sink):
        self.sink, self.hash, self.size = sink, hashlib.sha256(), 0

    def writable(self):
        return True

    def write(self, b):
        self.hash.update(b)
        self.size += len(b)
        return self.sink.write(b) if self.sink is not None else len(b)


def _file_bytes(entry, scratch):
    if entry.data is not None:
        return entry.data
    if entry.transform == "strip-debug":
        out = os.path.join(scratch, "stripped")
        subprocess.run(["strip", "--strip-debug", "-o", out, entry.source], check=True)
        with open(out, "rb") as f:
            return f.read()
    if entry.transform is not None:
        raise ValueError(f"unknown transform {entry.transform}")
    with open(entry.source, "rb") as f:
        return f.read()


def write_layer(entries, path):
    """Writes the gzip layer; returns (compressed digest, size, uncompressed diff_id)."""
    with open(path, "wb") as raw, tempfile.TemporaryDirectory() as scratch:
        compressed = _HashingWriter(raw)
        with gzip.GzipFile(filename="", mode="wb", fileobj=compressed, mtime=EPOCH, compresslevel=6) as gz:
            plain = _HashingWriter(gz)
            with tarfile.open(fileobj=plain, mode="w|", format=tarfile.PAX_FORMAT) as tar:
                for e in with_parents(entries):
                    if e.kind == "file":
                        data = _file_bytes(e, scratch)
                        tar.addfile(_tarinfo(e.path, "file", len(data), e.mode, e.uid, e.gid), io.BytesIO(data))
                    elif e.kind == "dir":
                        tar.addfile(_tarinfo(e.path + "/", "dir", 0, e.mode, e.uid, e.gid))
                    else:
                        tar.addfile(_tarinfo(e.path, "symlink", 0, e.mode, e.uid, e.gid, e.target))
    return "sha256:" + compressed.hash.hexdigest(), compressed.size, "sha256:" + plain.hash.hexdigest()


def normalise(reference):
    """The full name containerd and the CRI use for `reference` (docker.io/... when no registry)."""
    first, sep, rest = reference.partition("/")
    if sep and ("." in first or ":" in first or first == "localhost"):
        return reference
    if not sep:
        return "docker.io/library/" + reference
    return "docker.io/" + reference


def familiar(reference):
    """The short name Docker shows (docker.io/ and library/ dropped)."""
    if reference.startswith("docker.io/library/"):
        return reference[len("docker.io/library/"):]
    if reference.startswith("docker.io/"):
        return reference[len("docker.io/"):]
    return reference


def _canonical(obj):
    return json.dumps(obj, sort_keys=True, separators=(",", ":")).encode()


def write_archive(reference, config, entries, out_path, arch):
    """Writes the archive for `reference` at out_path; returns (manifest digest, archive size).

    `config` is the OCI image config's `config` object (Entrypoint, Env, User, ...).
    """
    full = normalise(reference)
    out_dir = os.path.dirname(out_path)
    with tempfile.TemporaryDirectory(dir=out_dir) as work:
        layer_path = os.path.join(work, "layer")
        layer_digest, layer_size, diff_id = write_layer(entries, layer_path)
        image_config = {
            "architecture": arch,
            "os": "linux",
            "created": CREATED,
            "config": config,
            "rootfs": {"type": "layers", "diff_ids": [diff_id]},
            "history": [{"created": CREATED, "created_by": "scripts/build-images.sh"}],
        }
        config_bytes = _canonical(image_config)
        config_digest = "sha256:" + hashlib.sha256(config_bytes).hexdigest()
        manifest = {
            "schemaVersion": 2,
            "mediaType": MT_MANIFEST,
            "config": {"mediaType": MT_CONFIG, "digest": config_digest, "size": len(config_bytes)},
            "layers": [{"mediaType": MT_LAYER, "digest": layer_digest, "size": layer_size}],
        }
        manifest_bytes = _canonical(manifest)
        manifest_digest = "sha256:" + hashlib.sha256(manifest_bytes).hexdigest()
        index = {
            "schemaVersion": 2,
            "mediaType": MT_INDEX,
            "manifests": [{
                "mediaType": MT_MANIFEST,
                "digest": manifest_digest,
                "size": len(manifest_bytes),
                "platform": {"architecture": arch, "os": "linux"},
                "annotations": {
                    "io.containerd.image.name": full,
                    "org.opencontainers.image.ref.name": full,
                },
            }],
        }

        def blob(digest):
            return "blobs/sha256/" + digest.split(":", 1)[1]

        docker_manifest = [{
            "Config": blob(config_digest),
            "RepoTags": [familiar(full)],
            "Layers": [blob(layer_digest)],
        }]
        tmp_out = os.path.join(work, "archive")
        with tarfile.open(tmp_out, "w", format=tarfile.PAX_FORMAT) as tar:
            # index.json before manifest.json: kind reads the first of the two it meets.
            for name, data in (("oci-layout", _canonical({"imageLayoutVersion": "1.0.0"})),
                               ("index.json", _canonical(index)),
                               ("manifest.json", _canonical(docker_manifest))):
                tar.addfile(_tarinfo(name, "file", len(data)), io.BytesIO(data))
            tar.addfile(_tarinfo("blobs/", "dir", mode=0o755))
            tar.addfile(_tarinfo("blobs/sha256/", "dir", mode=0o755))
            blobs = [(config_digest, config_bytes), (manifest_digest, manifest_bytes)]
            for digest, data in sorted(blobs):
                tar.addfile(_tarinfo(blob(digest), "file", len(data)), io.BytesIO(data))
            with open(layer_path, "rb") as f:
                tar.addfile(_tarinfo(blob(layer_digest), "file", layer_size), f)
        os.replace(tmp_out, out_path)
    return manifest_digest, os.path.getsize(out_path)
