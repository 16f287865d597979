"""Compares the built archives with the Dockerfiles and the references the project names.

    check_images.py DIR/index.tsv
    docker image inspect IMAGE | check_images.py --docker-inspect NAME

The second form compares what `docker build` made from deploy/docker/NAME's Dockerfile with the
same expectations, so the kind workflow proves both ways agree.

For mailproxy, client-sim and pressure-operator the image config read back from the archive must
carry the entrypoint, command, user, exposed ports, environment, working directory, volumes and
health check of the final stage of deploy/docker/*.Dockerfile; for every image the archive's
index must name the reference in index.tsv, which must be what the chart's values and the CRD's
defaults name (normalised as the CRI does). Third-party images must run as a non-root user.
Prints every mismatch and exits 1 if there is one.
"""

import json
import os
import sys
import tarfile

import image_recipes
import images_yaml
import dockerfile
from dockerfile import final_stage
from oci_layout import normalise


def read_archive(path):
    """(index, manifest, config) as stored in the archive."""
    with tarfile.open(path) as tar:
        def load(name):
            return json.load(tar.extractfile(name))
        index = load("index.json")
        manifest = load("blobs/sha256/" + index["manifests"][0]["digest"].split(":")[1])
        config = load("blobs/sha256/" + manifest["config"]["digest"].split(":")[1])
    return index, manifest, config


def expected_config(name):
    s = final_stage(open(os.path.join(image_recipes.ROOT, image_recipes.DOCKERFILES[name])).read())
    hc = s["healthcheck"]
    ns = 1_000_000_000
    return {
        "Entrypoint": s["entrypoint"],
        "Cmd": s["cmd"],
        "User": s["user"],
        "ExposedPorts": sorted(s["ports"]),
        "Env": s["env"],
        "WorkingDir": s["workdir"],
        "Volumes": sorted(s["volumes"]),
        "Healthcheck": hc and {"Test": hc["test"], "Interval": int(hc["interval"] * ns),
                               "Timeout": int(hc["timeout"] * ns),
                               "StartPeriod": int(hc["start-period"] * ns), "Retries": hc["retries"]},
    }


def actual_config(config):
    c = config.get("config", {})
    return {
        "Entrypoint": c.get("Entrypoint"),
        "Cmd": c.get("Cmd"),
        "User": c.get("User"),
        "ExposedPorts": sorted(c.get("ExposedPorts") or {}),
        "Env": c.get("Env"),
        "WorkingDir": c.get("WorkingDir") or None,
        "Volumes": sorted(c.get("Volumes") or {}),
        "Healthcheck": _health(c.get("Healthcheck")),
    }


def _health(hc):
    """A health check with Docker's defaults filled in for what it leaves out, other keys dropped."""
    if not hc:
        return None
    ns = 1_000_000_000
    defaults = {"Interval": dockerfile.HEALTH_DEFAULTS["interval"] * ns,
                "Timeout": dockerfile.HEALTH_DEFAULTS["timeout"] * ns,
                "StartPeriod": 0, "Retries": dockerfile.HEALTH_DEFAULTS["retries"]}
    return {"Test": hc.get("Test"), **{k: hc.get(k) or d for k, d in defaults.items()}}


def docker_inspect(name):
    """Compares `docker image inspect` JSON on stdin with the Dockerfile of `name`."""
    config = json.load(sys.stdin)[0]["Config"]
    want, got = expected_config(name), actual_config({"config": config})
    # Docker adds nothing to these fields, but the base image may bring its own env entries.
    got["Env"] = [e for e in got["Env"] or [] if e.split("=")[0] in {w.split("=")[0] for w in want["Env"]}]
    errors = [f"{name}: {k} is {got[k]!r} in the docker image, {want[k]!r} expected"
              for k in want if want[k] != got[k]]
    print("\n".join(errors) or f"{name}: docker build agrees with build-images.sh")
    sys.exit(1 if errors else 0)


def main():
    if sys.argv[1] == "--docker-inspect":
        docker_inspect(sys.argv[2])
    rows = images_yaml.read_index(sys.argv[1])
    refs = image_recipes.references()
    errors = []
    for row in rows:
        name = row["name"]
        index, _, config = read_archive(row["archive"])
        want_ref = normalise(refs[name]) if name in refs else row["reference"]
        annotations = index["manifests"][0].get("annotations", {})
        for key in ("io.containerd.image.name", "org.opencontainers.image.ref.name"):
            if annotations.get(key) != want_ref:
                errors.append(f"{name}: index annotation {key} is {annotations.get(key)!r}, want {want_ref!r}")
        if row["reference"] != want_ref:
            errors.append(f"{name}: index.tsv names {row['reference']!r}, the chart/CRD name {want_ref!r}")
        user = config.get("config", {}).get("User", "")
        if (not user or user.split(":")[0] in ("0", "root")) and name not in image_recipes.ROOT_IMAGES:
            errors.append(f"{name}: runs as root (User {user!r})")
        if name not in image_recipes.DOCKERFILES:
            continue
        want, got = expected_config(name), actual_config(config)
        for key in want:
            if want[key] != got[key]:
                errors.append(f"{name}: {key} is {got[key]!r} in the image, "
                              f"{want[key]!r} in {image_recipes.DOCKERFILES[name]}")
    print("\n".join(errors) or f"{len(rows)} archives agree")
    sys.exit(1 if errors else 0)


if __name__ == "__main__":
    main()
