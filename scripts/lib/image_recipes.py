"""What goes into each image scripts/build-images.sh makes, and under which reference.

Ours (mailproxy, client-sim, pressure-operator): the workspace binary, exactly the shared
libraries `ldd` says it links (with the dynamic loader), CA certificates, /etc/passwd and
/etc/group with the Dockerfile's user, /tmp; run-time settings from deploy/docker/*.Dockerfile;
references from the chart's values and the CRD's defaults. postgres: Debian's postgresql-15 as
installed on this machine with an entrypoint that does what the official image does with the
POSTGRES_* variables. pause: the CRI sandbox image, a static C program. mailpit, prometheus
and metrics-server: static binaries built from their Go modules (pinned versions, wrapper
modules that repeat the upstream replace/exclude lines, as `go install pkg@version` refuses
those).
"""

import hashlib
import json
import os
import re
import shutil
import subprocess

from dockerfile import DockerfileError, final_stage  # noqa: F401 (DockerfileError re-exported)
from oci_layout import Entry

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
LIB = os.path.join(ROOT, "scripts", "lib")
PG_MAJOR = "15"
PG_BIN = f"/usr/lib/postgresql/{PG_MAJOR}/bin"
PG_LIB = f"/usr/lib/postgresql/{PG_MAJOR}/lib"
PG_SHARE = f"/usr/share/postgresql/{PG_MAJOR}"
PG_UID = 70  # the operator's StatefulSet runs PostgreSQL as 70:70 (the official alpine image's)
BUSYBOX_APPLETS = (
    "sh ash [ basename cat chmod chown cp cut date df dirname du echo env false find grep gunzip "
    "gzip head id kill ls mkdir mktemp mv printf ps pwd readlink rm rmdir sed setpriv sleep sort "
    "stat tail test touch tr true uniq wc which xargs zcat"
).split()


class RecipeError(Exception):
    """An input an image needs is missing or inconsistent."""


def _read(rel):
    with open(os.path.join(ROOT, rel)) as f:
        return f.read()


def _const(rel, name):
    m = re.search(rf'const {name}: &str = "([^"]+)"', _read(rel))
    if not m:
        raise RecipeError(f"{rel}: no {name}")
    return m.group(1)


def references():
    """name -> reference, as the CRD defaults and the chart's values name our images."""
    values = _read("charts/pressure-operator/values.yaml")
    repo = re.search(r"^image:\n(?:  .*\n)*?  repository: (\S+)", values, re.M)
    tag = re.search(r"^image:\n(?:  .*\n)*?  tag: \"?([^\"\s]*)\"?", values, re.M)
    app = re.search(r'^appVersion: "?([^"\s]+)"?', _read("charts/pressure-operator/Chart.yaml"), re.M)
    if not (repo and tag and app):
        raise RecipeError("charts/pressure-operator: image.repository, image.tag or appVersion missing")
    return {
        "mailproxy": _const("crds/src/spec/sut.rs", "DEFAULT_PROXY_IMAGE"),
        "client-sim": _const("crds/src/spec.rs", "DEFAULT_CLIENT_IMAGE"),
        "pressure-operator": f"{repo.group(1)}:{tag.group(1) or app.group(1)}",
        "postgres": f"localhost/mail-pressure/postgres-debian:{PG_MAJOR}",
        "pause": "localhost/mail-pressure/pause:1",
        **{name: g["reference"] for name, g in GO_IMAGES.items()},
    }


# Third-party programs built from their Go modules. Mailpit stands in for MailHog (whose module
# does not build here); the operator runs a MailHog-kind sink as uid 1000 and Prometheus as 65534.
# metrics-server serves the resource metrics API the proxy's HorizontalPodAutoscaler reads.
GO_IMAGES = {
    "mailpit": {
        "module": "github.com/axllent/mailpit", "version": "v1.33.1",
        "package": "github.com/axllent/mailpit", "go": "1.26.0",
        "ldflags": "-X github.com/axllent/mailpit/config.Version=v1.33.1",
        "directives": [],
        "reference": "localhost/mail-pressure/mailpit:v1.33.1",
    },
    "prometheus": {
        # Prometheus 2.53.0 (the CRD default's version) is module version v0.53.0.
        "module": "github.com/prometheus/prometheus", "version": "v0.53.0",
        "package": "github.com/prometheus/prometheus/cmd/prometheus", "go": "1.22",
        "ldflags": "-X github.com/prometheus/common/version.Version=2.53.0",
        "directives": [
            "replace k8s.io/klog => github.com/simonpasquier/klog-gokit v0.3.0",
            "replace k8s.io/klog/v2 => github.com/simonpasquier/klog-gokit/v3 v3.3.0",
            "exclude github.com/linode/linodego v1.0.0",
            "exclude github.com/grpc-ecosystem/grpc-gateway v1.14.7",
            "exclude google.golang.org/api v0.30.0",
        ],
        # Only the service discoveries our configurations use (upstream's plugins.yml way; see
        # the file's header): the module's plugins/plugins.go is replaced in a copy of v0.53.0.
        "patch": {"replace": {"plugins/plugins.go": "scripts/lib/prometheus/plugins.go"}},
        "reference": "localhost/mail-pressure/prometheus:v2.53.0",
    },
    "metrics-server": {
        # v0.8.0's go.mod has no replace or exclude line. `--version` prints client-go's
        # version.gitVersion, which upstream's Makefile sets with -X (as here; gitCommit and
        # buildDate are left at client-go's defaults: nothing depends on the build time).
        "module": "sigs.k8s.io/metrics-server", "version": "v0.8.0",
        "package": "sigs.k8s.io/metrics-server/cmd/metrics-server", "go": "1.24.4",
        "ldflags": "-X k8s.io/client-go/pkg/version.gitVersion=v0.8.0",
        "directives": [],
        "reference": "localhost/mail-pressure/metrics-server:v0.8.0",
    },
    "kube-network-policies": {
        # The NetworkPolicy agent of the real test node (issue 14): kube-network-policies passes
        # each new connection of a pod that a policy selects to userspace (NFQUEUE) for a verdict.
        # One change to upstream: the queue rule goes through nft_compat's xtables NFQUEUE target
        # instead of nftables' native `queue`, which needs a kernel module (nft_queue) that
        # kernels built without CONFIG_NFT_QUEUE, such as this machine's, lack; see
        # deploy/local/kube-network-policies/nfqueue_compat.go.
        "module": "sigs.k8s.io/kube-network-policies", "version": "v0.8.0",
        "package": "sigs.k8s.io/kube-network-policies/cmd", "go": "1.23.0",
        "ldflags": "",
        "directives": [],
        "patch": {
            "add": {"pkg/networkpolicy/nfqueue_compat.go":
                    "deploy/local/kube-network-policies/nfqueue_compat.go"},
            # (file, upstream text, replacement, how often the text must occur)
            "edit": [("pkg/networkpolicy/controller.go",
                      "queue := &expr.Queue{Num: uint16(c.config.QueueID)}\n"
                      "\tif c.config.FailOpen {\n"
                      "\t\tqueue.Flag = expr.QueueFlagBypass\n"
                      "\t}",
                      "queue := nfqueueTarget(uint16(c.config.QueueID), c.config.FailOpen)",
                      2)],
        },
        "reference": "localhost/mail-pressure/kube-network-policies:v0.8.0",
    },
}

# Images that run as root, and why (every other image must name a non-root user).
ROOT_IMAGES = {
    "kube-network-policies": "a node agent, privileged as upstream's DaemonSet: it writes the "
                             "node's nftables rules and answers its NFQUEUE",
}

DOCKERFILES = {
    "mailproxy": "deploy/docker/mailproxy.Dockerfile",
    "client-sim": "deploy/docker/client-sim.Dockerfile",
    "pressure-operator": "deploy/docker/operator.Dockerfile",
}


def _ldd(path):
    """(name as linked, resolved path) for each shared library `path` needs, loader included."""
    out = subprocess.run(["ldd", path], capture_output=True, text=True)
    if out.returncode != 0 and "not a dynamic executable" in out.stdout + out.stderr:
        return []
    if out.returncode != 0:
        raise RecipeError(f"ldd {path}: {out.stderr.strip()}")
    libs = []
    for line in out.stdout.splitlines():
        line = line.strip()
        if "not found" in line:
            raise RecipeError(f"{path}: {line}")
        m = re.match(r"(\S+) => (/\S+) \(0x", line) or re.match(r"(/\S+) \(0x", line)
        if m:
            libs.append(m.group(m.lastindex))
    return libs


def _host_file(path, entries, mode=None):
    """Adds the host file at `path` under its real location, with symlinks for the names used."""
    real = os.path.realpath(path)
    entries[real] = Entry(real, "file", source=real, mode=mode or (os.stat(real).st_mode & 0o7777))
    linked = os.path.join(os.path.realpath(os.path.dirname(path)), os.path.basename(path))
    if linked != real:
        target = os.path.basename(real) if os.path.dirname(linked) == os.path.dirname(real) else real
        entries[linked] = Entry(linked, "symlink", target=target)


def _libraries(binaries, entries):
    for binary in binaries:
        for lib in _ldd(binary):
            _host_file(lib, entries)


def _usr_merge(entries):
    """The host's /bin, /lib, /lib64, /sbin symlinks (Debian's merged /usr), so linked paths hold."""
    for top in ("bin", "lib", "lib64", "sbin"):
        if os.path.islink("/" + top):
            entries[top] = Entry(top, "symlink", target=os.readlink("/" + top))


def _accounts(entries, user, uid, gid, home, shell="/usr/sbin/nologin"):
    passwd = f"root:x:0:0:root:/root:{shell}\n"
    group = "root:x:0:\n"
    if uid != 65534:
        passwd += f"{user}:x:{uid}:{gid}::{home}:{shell}\n"
        group += f"{user}:x:{gid}:\n"
    passwd += "nobody:x:65534:65534:nobody:/nonexistent:/usr/sbin/nologin\n"
    group += "nogroup:x:65534:\n"
    entries["etc/passwd"] = Entry("etc/passwd", "file", data=passwd.encode())
    entries["etc/group"] = Entry("etc/group", "file", data=group.encode())
    # glibc resolves names with files then DNS (cluster DNS via the resolv.conf the runtime mounts).
    entries["etc/nsswitch.conf"] = Entry("etc/nsswitch.conf", "file",
                                         data=b"passwd: files\ngroup: files\nhosts: files dns\n")


def _ca_certificates(entries):
    bundle = "/etc/ssl/certs/ca-certificates.crt"
    if not os.path.isfile(bundle):
        raise RecipeError(f"{bundle} missing: apt-get install ca-certificates")
    entries[bundle] = Entry(bundle, "file", source=bundle)
    # OpenSSL's compiled-in OPENSSLDIR on Debian is /usr/lib/ssl.
    entries["usr/lib/ssl/certs"] = Entry("usr/lib/ssl/certs", "symlink", target="/etc/ssl/certs")
    entries["usr/lib/ssl/cert.pem"] = Entry("usr/lib/ssl/cert.pem", "symlink", target=bundle)


def _base(entries):
    _usr_merge(entries)
    entries["tmp"] = Entry("tmp", "dir", mode=0o1777)


def _docker_config(settings, labels):
    """The image config's `config` object from a Dockerfile's final-stage settings."""
    config = {"Env": settings["env"], "Labels": labels}
    for key, field in (("entrypoint", "Entrypoint"), ("cmd", "Cmd"), ("user", "User"),
                       ("workdir", "WorkingDir")):
        if settings[key] is not None:
            config[field] = settings[key]
    if settings["ports"]:
        config["ExposedPorts"] = {p: {} for p in settings["ports"]}
    if settings["volumes"]:
        config["Volumes"] = {v: {} for v in settings["volumes"]}
    hc = settings["healthcheck"]
    if hc:
        ns = 1_000_000_000
        config["Healthcheck"] = {"Test": hc["test"], "Interval": int(hc["interval"] * ns),
                                 "Timeout": int(hc["timeout"] * ns),
                                 "StartPeriod": int(hc["start-period"] * ns), "Retries": hc["retries"]}
    return config


def ours(name, binary, version):
    """Entries and config of one of our images from the built `binary`."""
    settings = final_stage(_read(DOCKERFILES[name]))
    account = settings["account"]
    if not account or settings["user"] != f"{account['uid']}:{account['gid']}":
        raise RecipeError(f"{DOCKERFILES[name]}: USER must be the uid:gid useradd creates")
    if not os.path.isfile(binary):
        raise RecipeError(f"{binary} missing: cargo build -p {name}")
    entries = {}
    _base(entries)
    dest = settings["entrypoint"][0]
    entries[dest] = Entry(dest, "file", source=binary, mode=0o755, transform="strip-debug")
    _libraries([binary], entries)
    _ca_certificates(entries)
    _accounts(entries, account["name"], account["uid"], account["gid"], account["home"])
    for d in [*settings["volumes"], settings["workdir"]]:
        if d:
            entries[d] = Entry(d, "dir", mode=0o750, uid=account["uid"], gid=account["gid"])
    labels = {"org.opencontainers.image.title": name, "org.opencontainers.image.version": version,
              "org.opencontainers.image.description": f"{name} built by scripts/build-images.sh "
              f"with the settings of {DOCKERFILES[name]}"}
    return list(entries.values()), _docker_config(settings, labels)


def _tree(src, entries, skip=()):
    """Every file, symlink and directory under the host folder `src`, as on the host."""
    for dirpath, dirnames, filenames in os.walk(src):
        dirnames[:] = sorted(d for d in dirnames if os.path.join(dirpath, d) not in skip)
        for n in [*dirnames, *filenames]:
            path = os.path.join(dirpath, n)
            if path in skip:
                continue
            if os.path.islink(path):
                entries[path] = Entry(path, "symlink", target=os.readlink(path))
            elif os.path.isdir(path):
                entries[path] = Entry(path, "dir")
            else:
                entries[path] = Entry(path, "file", source=path, mode=os.stat(path).st_mode & 0o755)


def _pg_version():
    out = subprocess.run([f"{PG_BIN}/postgres", "--version"], capture_output=True, text=True)
    m = re.search(r"(\d+\.\d+)", out.stdout)
    if out.returncode != 0 or not m:
        raise RecipeError(f"{PG_BIN}/postgres missing: apt-get install postgresql-{PG_MAJOR}")
    return m.group(1)


def postgres():
    """Debian's PostgreSQL with an entrypoint for POSTGRES_USER/PASSWORD/DB, PGDATA, initdb args."""
    version = _pg_version()
    busybox = "/bin/busybox"
    if not os.path.isfile(busybox) or _ldd(busybox):
        raise RecipeError("a static /bin/busybox is needed: apt-get install busybox-static")
    entries = {}
    _base(entries)
    skip = {f"{PG_LIB}/bitcode", f"{PG_LIB}/pgxs", f"{PG_LIB}/llvmjit.so", f"{PG_LIB}/llvmjit_types.bc",
            f"{PG_SHARE}/man"}
    _tree(PG_BIN, entries)
    _tree(PG_LIB, entries, skip)
    _tree(PG_SHARE, entries, skip)
    # Listen on every address, as the official image's sample does; initdb copies the sample.
    sample = f"{PG_SHARE}/postgresql.conf.sample"
    with open(sample) as f:
        text = re.sub(r"^#?listen_addresses\s*=\s*\S+", "listen_addresses = '*'", f.read(), count=1,
                      flags=re.M)
    entries[sample] = Entry(sample, "file", data=text.encode())
    elves = [e.source for e in entries.values() if e.kind == "file" and e.source
             and e.source.startswith(("/usr/lib/postgresql/",))]
    _libraries(elves, entries)
    _tree("/usr/share/zoneinfo", entries)
    if os.path.isdir("/usr/lib/locale/C.utf8"):
        _tree("/usr/lib/locale/C.utf8", entries)
    entries["usr/bin/busybox"] = Entry("usr/bin/busybox", "file", source=busybox, mode=0o755)
    for applet in BUSYBOX_APPLETS:
        entries[f"usr/bin/{applet}"] = Entry(f"usr/bin/{applet}", "symlink", target="busybox")
    script = os.path.join(LIB, "postgres-entrypoint.sh")
    entries["usr/local/bin/postgres-entrypoint.sh"] = Entry(
        "usr/local/bin/postgres-entrypoint.sh", "file", source=script, mode=0o755)
    _accounts(entries, "postgres", PG_UID, PG_UID, "/var/lib/postgresql", shell="/bin/sh")
    pg_dirs = {"var/lib/postgresql": 0o755, "var/lib/postgresql/data": 0o700,
               "var/run/postgresql": 0o3777}
    for d, mode in pg_dirs.items():
        entries[d] = Entry(d, "dir", mode=mode, uid=PG_UID, gid=PG_UID)
    entries["docker-entrypoint-initdb.d"] = Entry("docker-entrypoint-initdb.d", "dir")
    config = {
        "User": f"{PG_UID}:{PG_UID}",
        "Entrypoint": ["/usr/local/bin/postgres-entrypoint.sh"],
        "Cmd": ["postgres"],
        "Env": [f"PATH={PG_BIN}:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
                f"PG_MAJOR={PG_MAJOR}", f"PG_VERSION={version}", "PGDATA=/var/lib/postgresql/data",
                "LANG=C.UTF-8"],
        "ExposedPorts": {"5432/tcp": {}},
        "Volumes": {"/var/lib/postgresql/data": {}},
        "StopSignal": "SIGINT",
        "Labels": {
            "org.opencontainers.image.title": "postgres-debian",
            "org.opencontainers.image.version": version,
            "org.opencontainers.image.description":
                f"PostgreSQL {version} from Debian's postgresql-{PG_MAJOR} package with an entrypoint "
                "for POSTGRES_USER/POSTGRES_PASSWORD/POSTGRES_DB/PGDATA; not the official image",
        },
    }
    return list(entries.values()), config


def pause(scratch):
    """The CRI sandbox image: a static program that waits for SIGTERM and reaps children."""
    binary = os.path.join(scratch, "pause")
    cmd = ["gcc", "-static", "-Os", "-s", "-Wall", "-Werror", "-o", binary, os.path.join(LIB, "pause.c")]
    out = subprocess.run(cmd, capture_output=True, text=True)
    if out.returncode != 0:
        raise RecipeError(f"gcc could not build pause: {out.stderr.strip()} (apt-get install gcc libc6-dev)")
    entries = [Entry("pause", "file", source=binary, mode=0o755)]
    config = {"User": "65535:65535", "Entrypoint": ["/pause"],
              "Env": ["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"],
              "Labels": {"org.opencontainers.image.title": "pause",
                         "org.opencontainers.image.description":
                             "sandbox (pause) image built from scripts/lib/pause.c"}}
    return entries, config


def _patch_stamp(g):
    """What the patch changes, for the stamp: changing a file or an edit rebuilds the binary."""
    patch = g.get("patch")
    if not patch:
        return ""
    h = hashlib.sha256(repr(patch.get("edit", [])).encode())
    for kind in ("replace", "add"):
        for target, source in sorted(patch.get(kind, {}).items()):
            h.update(f"{kind} {target} ".encode() + _read(source).encode())
    return "patch=" + h.hexdigest()[:16]


def _patched_module(g, src, env):
    """Copies the pinned module out of the module cache into src/module with the repo's files
    in place (g["patch"]: "replace" and "add", path in the module -> path in this repo, and
    "edit", texts replaced in the module's files) and returns the `replace`
    line for go.mod, or None when the recipe replaces nothing. `go build -overlay` would be
    lighter but refuses files beneath GOMODCACHE; a copy of the pinned version is the next
    least: the module's own go.mod and every other file stay upstream's."""
    if not g.get("patch"):
        return None
    spec = f"{g['module']}@{g['version']}"
    for stale in ("go.mod", "go.sum"):  # a previous go.mod may name a copy that is gone
        if os.path.exists(os.path.join(src, stale)):
            os.remove(os.path.join(src, stale))
    out = subprocess.run(["go", "mod", "download", "-json", spec], cwd=src, env=env,
                         capture_output=True, text=True)
    if out.returncode != 0:
        raise RecipeError(f"{spec}: go mod download failed:\n{(out.stderr or out.stdout).strip()[-2000:]}")
    moddir = json.loads(out.stdout)["Dir"]
    copy = os.path.join(src, "module")
    shutil.rmtree(copy, ignore_errors=True)
    shutil.copytree(moddir, copy)
    for dirpath, dirnames, filenames in os.walk(copy):  # the module cache's files are read-only
        for entry in dirnames + filenames:
            os.chmod(os.path.join(dirpath, entry), 0o755 if entry in dirnames else 0o644)
    patch = g["patch"]
    for kind in ("replace", "add"):
        for target, source in patch.get(kind, {}).items():
            if os.path.isfile(os.path.join(copy, target)) != (kind == "replace"):
                raise RecipeError(f"{spec}: cannot {kind} {target} (it is "
                                  f"{'missing' if kind == 'replace' else 'there already'})")
            shutil.copyfile(os.path.join(ROOT, source), os.path.join(copy, target))
    for target, old, new, count in patch.get("edit", []):
        path = os.path.join(copy, target)
        with open(path) as f:
            text = f.read()
        if text.count(old) != count:  # the pinned version changed under the edit
            raise RecipeError(f"{spec}: {target} holds the text to edit {text.count(old)} times, "
                              f"not {count}: {old.splitlines()[0]!r}")
        with open(path, "w") as f:
            f.write(text.replace(old, new))
    return f"replace {g['module']} => ./module"


def go_binary(name, cache):
    """Builds (once per version) the static binary of GO_IMAGES[name] in `cache`; returns its path."""
    g = GO_IMAGES[name]
    src = os.path.join(cache, name)
    binary = os.path.join(src, name)
    stamp = os.path.join(src, "stamp")
    want = f"{g['module']}@{g['version']} {g['ldflags']} {_patch_stamp(g)}".rstrip()
    try:
        with open(stamp) as f:
            if f.read() == want and os.path.isfile(binary):
                return binary
    except OSError:
        pass
    os.makedirs(src, exist_ok=True)
    env = dict(os.environ, CGO_ENABLED="0", GOFLAGS="-mod=mod")
    replace = _patched_module(g, src, env)
    with open(os.path.join(src, "go.mod"), "w") as f:
        f.write("\n".join([f"module local/{name}-image", "", f"go {g['go']}", "",
                           f"require {g['module']} {g['version']}", "", *g["directives"],
                           *([replace] if replace else []), ""]))
    with open(os.path.join(src, "tools.go"), "w") as f:
        f.write(f'//go:build tools\n\npackage tools\n\nimport _ "{g["package"]}"\n')
    tidy = ["go", "mod", "tidy"]
    out = subprocess.run(tidy, cwd=src, env=env, capture_output=True, text=True)
    if out.returncode != 0:
        raise RecipeError(f"{name}: {' '.join(tidy)} failed in {src}:\n{out.stderr.strip()[-3000:]}")
    build = ["go", "build", "-trimpath",
             "-ldflags", f"-s -w {g['ldflags']}", "-o", binary, g["package"]]
    out = subprocess.run(build, cwd=src, env=env, capture_output=True, text=True)
    if out.returncode != 0:
        raise RecipeError(f"{name}: {' '.join(build)} failed in {src}:\n{out.stderr.strip()[-3000:]}")
    with open(stamp, "w") as f:
        f.write(want)
    return binary


def _static(binary, dest, entries):
    entries[dest] = Entry(dest, "file", source=binary, mode=0o755)
    if _ldd(binary):
        raise RecipeError(f"{binary} is not static (CGO_ENABLED=0 expected)")


PROMETHEUS_CONFIG = b"""# Default of localhost/mail-pressure/prometheus: scrape itself. The operator mounts its own.
global:
  scrape_interval: 15s
scrape_configs:
  - job_name: prometheus
    static_configs:
      - targets: ["localhost:9090"]
"""


def go_image(name, cache):
    """Entries and config of a Go-built third-party image."""
    g = GO_IMAGES[name]
    binary = go_binary(name, cache)
    entries = {}
    _base(entries)
    _ca_certificates(entries)
    version = g["reference"].rsplit(":", 1)[1]
    labels = {"org.opencontainers.image.title": name, "org.opencontainers.image.version": version,
              "org.opencontainers.image.description":
                  f"{name} built from the Go module {g['module']}@{g['version']} by "
                  "scripts/build-images.sh; not the official image"}
    path_env = "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
    if name == "mailpit":
        _static(binary, "usr/local/bin/mailpit", entries)
        _accounts(entries, "mailpit", 1000, 1000, "/data")
        entries["data"] = Entry("data", "dir", mode=0o750, uid=1000, gid=1000)
        config = {"User": "1000:1000", "Entrypoint": ["/usr/local/bin/mailpit"], "WorkingDir": "/data",
                  "Env": [path_env, "MP_DISABLE_VERSION_CHECK=true"],
                  "ExposedPorts": {"1025/tcp": {}, "8025/tcp": {}},
                  "Healthcheck": {"Test": ["CMD", "/usr/local/bin/mailpit", "readyz"],
                                  "Interval": 15_000_000_000, "Timeout": 5_000_000_000,
                                  "StartPeriod": 10_000_000_000, "Retries": 3},
                  "Labels": labels}
    elif name == "prometheus":
        _static(binary, "usr/bin/prometheus", entries)
        _accounts(entries, "nobody", 65534, 65534, "/nonexistent")
        entries["etc/prometheus/prometheus.yml"] = Entry("etc/prometheus/prometheus.yml", "file",
                                                         data=PROMETHEUS_CONFIG)
        entries["prometheus"] = Entry("prometheus", "dir", mode=0o755, uid=65534, gid=65534)
        config = {"User": "65534:65534", "Entrypoint": ["/bin/prometheus"],
                  "Cmd": ["--config.file=/etc/prometheus/prometheus.yml", "--storage.tsdb.path=/prometheus"],
                  "WorkingDir": "/prometheus", "Env": [path_env],
                  "ExposedPorts": {"9090/tcp": {}}, "Volumes": {"/prometheus": {}}, "Labels": labels}
    elif name == "metrics-server":
        # As upstream's Dockerfile on distroless/static: the binary at /, USER 65534, that
        # entrypoint. Port 10250 is the --secure-port of upstream's manifests (which pass
        # --cert-dir=/tmp and mount an emptyDir there for the self-signed serving certificate).
        _static(binary, "metrics-server", entries)
        _accounts(entries, "nobody", 65534, 65534, "/nonexistent")
        config = {"User": "65534:65534", "Entrypoint": ["/metrics-server"], "Env": [path_env],
                  "ExposedPorts": {"10250/tcp": {}}, "Labels": labels}
    elif name == "kube-network-policies":
        # As upstream's Dockerfile on distroless/static: /bin/netpol, run as root (its DaemonSet
        # is privileged with NET_ADMIN: it writes nftables rules and reads the NFQUEUE socket).
        _static(binary, "bin/netpol", entries)
        config = {"Entrypoint": ["/bin/netpol"], "Env": [path_env], "Labels": labels}
    else:
        raise RecipeError(f"{name}: no image recipe in go_image")
    return list(entries.values()), config
