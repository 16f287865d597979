"""Writes the image archives, index.tsv and images.yaml (called by scripts/build-images.sh).

    build_images.py --out DIR --bin-dir TARGET/PROFILE [NAME...]

An image is rewritten only when its inputs changed: the fingerprint of every entry (path, mode,
owner and the SHA-256 of its content) and its config are hashed into a key kept in
DIR/.meta/NAME.json beside the archive's digest and size; the same key means the same bytes.
"""

import argparse
import hashlib
import json
import os
import platform
import sys
import tempfile
import time

import image_recipes
import images_yaml
from oci_layout import normalise, write_archive

NAMES = ["mailproxy", "client-sim", "pressure-operator", "postgres", "pause", "mailpit", "prometheus",
         "metrics-server",
         "kube-network-policies"]
# Bump when the layout writer changes what it writes for the same inputs.
WRITER_VERSION = "1"


def arch():
    machine = platform.machine()
    return {"x86_64": "amd64", "aarch64": "arm64"}.get(machine, machine)


def recipe(name, bin_dir, version, scratch, out):
    if name in image_recipes.GO_IMAGES:
        return image_recipes.go_image(name, os.path.join(out, ".go"))
    if name in image_recipes.DOCKERFILES:
        return image_recipes.ours(name, os.path.join(bin_dir, name), version)
    if name == "postgres":
        return image_recipes.postgres()
    return image_recipes.pause(scratch)


def build(name, reference, out, bin_dir, version):
    """Builds (or keeps) one archive; returns its metadata and whether it was written."""
    meta_path = os.path.join(out, ".meta", name + ".json")
    archive = os.path.join(out, name + ".oci.tar")
    with tempfile.TemporaryDirectory() as scratch:
        entries, config = recipe(name, bin_dir, version, scratch, out)
        key_input = json.dumps([WRITER_VERSION, normalise(reference), arch(), config,
                                sorted(e.fingerprint() for e in entries)], sort_keys=True)
        key = hashlib.sha256(key_input.encode()).hexdigest()
        try:
            with open(meta_path) as f:
                old = json.load(f)
        except (OSError, ValueError):
            old = None
        if old and old.get("key") == key and os.path.isfile(archive) and \
                os.path.getsize(archive) == old.get("size"):
            return old, False
        digest, size = write_archive(reference, config, entries, archive, arch())
    meta = {"name": name, "reference": normalise(reference), "archive": archive, "size": size,
            "digest": digest, "key": key}
    os.makedirs(os.path.dirname(meta_path), exist_ok=True)
    with open(meta_path + ".tmp", "w") as f:
        json.dump(meta, f, indent=2, sort_keys=True)
    os.replace(meta_path + ".tmp", meta_path)
    return meta, True


def write_index(out):
    """index.tsv over every image whose archive is in `out` (built now or earlier)."""
    rows = []
    for name in NAMES:
        try:
            with open(os.path.join(out, ".meta", name + ".json")) as f:
                meta = json.load(f)
        except (OSError, ValueError):
            continue
        if os.path.isfile(meta["archive"]):
            rows.append(meta)
    lines = ["name\treference\tarchive\tsize\tdigest"]
    lines += [f"{m['name']}\t{m['reference']}\t{m['archive']}\t{m['size']}\t{m['digest']}" for m in rows]
    path = os.path.join(out, "index.tsv")
    with open(path + ".tmp", "w") as f:
        f.write("\n".join(lines) + "\n")
    os.replace(path + ".tmp", path)
    with open(os.path.join(out, "images.yaml.tmp"), "w") as f:
        f.write(images_yaml.render(images_yaml.read_index(path)))
    os.replace(os.path.join(out, "images.yaml.tmp"), os.path.join(out, "images.yaml"))


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", required=True)
    parser.add_argument("--bin-dir", required=True)
    parser.add_argument("names", nargs="*")
    args = parser.parse_args()
    names = args.names or NAMES
    unknown = [n for n in names if n not in NAMES]
    if unknown:
        sys.exit(f"build-images: unknown image {', '.join(unknown)}; known: {', '.join(NAMES)}")
    out = os.path.abspath(args.out)
    os.makedirs(out, exist_ok=True)
    try:
        refs = image_recipes.references()
        version = refs["pressure-operator"].rsplit(":", 1)[1]
        for name in names:
            started = time.monotonic()
            meta, written = build(name, refs[name], out, args.bin_dir, version)
            took = time.monotonic() - started
            state = f"written in {took:.1f}s" if written else "unchanged"
            print(f"  {name:<18} {meta['reference']:<48} {meta['size'] / 1e6:7.1f} MB  {state}")
        write_index(out)
    except (image_recipes.RecipeError, image_recipes.DockerfileError) as e:
        sys.exit(f"build-images: {e}")


if __name__ == "__main__":
    main()
