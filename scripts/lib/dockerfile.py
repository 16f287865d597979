"""Reads the run-time settings of a Dockerfile's final stage.

scripts/build-images.sh takes each image's entrypoint, command, user, environment, ports, working
directory, volumes and health check from deploy/docker/*.Dockerfile, so the images made without a
Docker engine and the ones `docker build` makes cannot drift apart; scripts/check-images.sh reads
the same settings back to compare them with what the archives hold. Only the instructions those
three Dockerfiles use are understood; anything else in the final stage is an error, not a guess.
"""

import json
import re
import shlex

# Docker's HEALTHCHECK defaults (seconds), used when an option is not given.
HEALTH_DEFAULTS = {"interval": 30, "timeout": 30, "start-period": 0, "retries": 3}
# The PATH of debian:bookworm-slim, which every final stage starts from.
DEBIAN_PATH = "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"


class DockerfileError(Exception):
    """The Dockerfile uses something this reader does not understand."""


def instructions(text):
    """(KEYWORD, arguments) for each instruction, continuation lines joined, comments dropped."""
    out, buf = [], ""
    for line in text.splitlines():
        stripped = line.strip()
        if not buf and (not stripped or stripped.startswith("#")):
            continue
        if buf and stripped.startswith("#"):
            continue
        if stripped.endswith("\\"):
            buf += stripped[:-1] + " "
            continue
        buf += stripped
        keyword, _, rest = buf.partition(" ")
        out.append((keyword.upper(), rest.strip()))
        buf = ""
    if buf:
        raise DockerfileError("the file ends inside a continued line")
    return out


def _json_or_shell(args):
    """An exec-form list as written, or a shell-form string wrapped as Docker does."""
    if args.startswith("["):
        return json.loads(args)
    return ["/bin/sh", "-c", args]


def _seconds(value):
    m = re.fullmatch(r"(\d+)(ms|s|m|h)", value)
    if not m:
        raise DockerfileError(f"duration {value!r} is not like 10s")
    factor = {"ms": 0.001, "s": 1, "m": 60, "h": 3600}[m.group(2)]
    return int(m.group(1)) * factor


def _env_pairs(args):
    words = shlex.split(args)
    if words and "=" not in words[0]:
        return [(words[0], args.split(None, 1)[1] if len(words) > 1 else "")]
    pairs = []
    for word in words:
        key, sep, value = word.partition("=")
        if not sep:
            raise DockerfileError(f"ENV word {word!r} is not KEY=VALUE")
        pairs.append((key, value))
    return pairs


def _healthcheck(args):
    m = re.fullmatch(r"((?:--\S+\s+)*)CMD\s+(.+)", args, re.S | re.I)
    if not m:
        raise DockerfileError("HEALTHCHECK must be HEALTHCHECK [options] CMD ...")
    options = dict(HEALTH_DEFAULTS)
    for word in m.group(1).split():
        key, _, value = word[2:].partition("=")
        if key not in options:
            raise DockerfileError(f"HEALTHCHECK option --{key} is not understood")
        options[key] = int(value) if key == "retries" else _seconds(value)
    rest = m.group(2).strip()
    test = ["CMD", *json.loads(rest)] if rest.startswith("[") else ["CMD-SHELL", rest]
    return {"test": test, **options}


def final_stage(text):
    """The run-time settings of the last stage, as a plain dict (see the module docs)."""
    stages, current = [], None
    for keyword, args in instructions(text):
        if keyword == "FROM":
            current = []
            stages.append(current)
        elif current is not None:
            current.append((keyword, args))
    if not stages:
        raise DockerfileError("no FROM line")
    settings = {
        "env": [DEBIAN_PATH],
        "entrypoint": None,
        "cmd": None,
        "user": None,
        "workdir": None,
        "ports": [],
        "volumes": [],
        "healthcheck": None,
        "account": None,
    }
    for keyword, args in stages[-1]:
        if keyword == "ENV":
            for key, value in _env_pairs(args):
                settings["env"] = [e for e in settings["env"] if not e.startswith(key + "=")]
                settings["env"].append(f"{key}={value}")
        elif keyword == "ENTRYPOINT":
            settings["entrypoint"] = _json_or_shell(args)
            settings["cmd"] = None  # Docker resets CMD when ENTRYPOINT is set after it.
        elif keyword == "CMD":
            settings["cmd"] = _json_or_shell(args)
        elif keyword == "USER":
            settings["user"] = args
        elif keyword == "WORKDIR":
            settings["workdir"] = args
        elif keyword == "EXPOSE":
            for port in args.split():
                settings["ports"].append(port if "/" in port else port + "/tcp")
        elif keyword == "VOLUME":
            settings["volumes"] += json.loads(args) if args.startswith("[") else args.split()
        elif keyword == "HEALTHCHECK":
            settings["healthcheck"] = _healthcheck(args)
        elif keyword == "RUN":
            settings["account"] = _account(args) or settings["account"]
        elif keyword in ("COPY", "ARG", "LABEL"):
            pass
        else:
            raise DockerfileError(f"{keyword} in the final stage is not understood")
    return settings


def _account(run):
    """The user the RUN line makes with useradd: name, uid, gid, home."""
    m = re.search(r"useradd\s+([^&;]*)", run)
    if not m:
        return None
    words = m.group(1).split()
    account = {"name": words[-1], "uid": None, "gid": None, "home": "/nonexistent"}
    for flag, key in (("--uid", "uid"), ("--gid", "gid"), ("--home-dir", "home")):
        if flag in words:
            value = words[words.index(flag) + 1]
            account[key] = int(value) if key != "home" else value
    return account
