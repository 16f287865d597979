#!/usr/bin/env bash
# Checks everything a user installs (issue 7): Helm charts, rendered manifests, values schema,
# Prometheus config, Grafana dashboard PromQL and metric names (against the real binaries'
# /metrics), the compose file, the Dockerfiles and the GitHub workflows.
#
#   scripts/check-packaging.sh
#
# Tools are installed once, idempotently, into ${PRESSURE_CACHE_DIR:-$HOME/.cache/mail-pressure}:
# helm and actionlint from the Go module proxy, check-jsonschema (and PyYAML) from PyPI in a venv,
# promtool from Debian's `prometheus` package (only when promtool is missing). It builds
# `mailproxy` and `client-sim` (debug, into ${CARGO_TARGET_DIR:-target}; a no-op when fresh).
# Every check runs; the script exits 1 if any failed, naming each failure and how to fix it.
set -uo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root" || exit 1

cache=${PRESSURE_CACHE_DIR:-$HOME/.cache/mail-pressure}
bin=$cache/bin
venv=$cache/packaging-venv
HELM_VERSION=v3.18.4
ACTIONLINT_VERSION=v1.7.12
CHECK_JSONSCHEMA_VERSION=0.39.0
HELM_UNITTEST_VERSION=v1.1.2
target=${CARGO_TARGET_DIR:-$root/target}
mkdir -p "$bin"
export PATH="$bin:$PATH"

work=$(mktemp -d /tmp/check-packaging.XXXXXX)
pids=()
cleanup() {
  for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null; done
  for pid in "${pids[@]}"; do wait "$pid" 2>/dev/null; done
  rm -rf "$work"
}
trap cleanup EXIT INT TERM

failures=()
step() { printf '\n==> %s\n' "$*"; }
# check NAME FIX CMD...: runs CMD, prints its output on failure and records NAME with its fix.
check() {
  local name=$1 fix=$2
  shift 2
  if "$@" >"$work/out" 2>&1; then
    printf '  ok   %s\n' "$name"
  else
    printf '  FAIL %s\n' "$name"
    sed 's/^/       | /' "$work/out" | tail -n 40
    printf '       fix: %s\n' "$fix"
    failures+=("$name -- $fix")
  fi
}

# ---------------------------------------------------------------------------------------------
step "Tools (cache: $cache)"
exec 9>"$cache/packaging-tools.lock"
flock 9
# A module build of helm reports only "v3.18" (no release stamp), so a stamp file records the
# version installed.
if [ ! -x "$bin/helm" ] || [ "$(cat "$bin/.helm-version" 2>/dev/null)" != "$HELM_VERSION" ]; then
  echo "  installing helm ${HELM_VERSION} (go install)"
  GOBIN=$bin go install "helm.sh/helm/v3/cmd/helm@${HELM_VERSION}" ||
    { echo "cannot install helm: needs Go and the Go module proxy" >&2; exit 1; }
  echo "$HELM_VERSION" >"$bin/.helm-version"
fi
if ! actionlint -version 2>/dev/null | head -n 1 | grep -qx "${ACTIONLINT_VERSION}"; then
  echo "  installing actionlint ${ACTIONLINT_VERSION} (go install)"
  GOBIN=$bin go install "github.com/rhysd/actionlint/cmd/actionlint@${ACTIONLINT_VERSION}" ||
    { echo "cannot install actionlint: needs Go and the Go module proxy" >&2; exit 1; }
fi
# helm-unittest's go.mod has a replace directive, so `go install pkg@version` refuses it: build it
# from a wrapper module that repeats the replace (minimal version selection pins the rest).
if [ ! -x "$bin/helm-unittest" ] || [ "$(cat "$bin/.helm-unittest-version" 2>/dev/null)" != "$HELM_UNITTEST_VERSION" ]; then
  echo "  building helm-unittest ${HELM_UNITTEST_VERSION} (wrapper module in $cache/helm-unittest-src)"
  src=$cache/helm-unittest-src
  rm -rf "$src" && mkdir -p "$src"
  printf '%s\n' "module local/helm-unittest-bin" "" "go 1.26.0" "" \
    "require github.com/helm-unittest/helm-unittest ${HELM_UNITTEST_VERSION}" "" \
    "replace github.com/vmware-labs/yaml-jsonpath v0.3.2 => github.com/helm-unittest/yaml-jsonpath v0.4.0" \
    >"$src/go.mod"
  printf '%s\n' "//go:build tools" "" "package tools" "" \
    'import _ "github.com/helm-unittest/helm-unittest/cmd/helm-unittest"' >"$src/tools.go"
  if ! (cd "$src" && go mod tidy && go build -o "$bin/helm-unittest" \
    github.com/helm-unittest/helm-unittest/cmd/helm-unittest) >"$work/helm-unittest.log" 2>&1; then
    cat "$work/helm-unittest.log"
    echo "cannot build helm-unittest: needs Go and the Go module proxy" >&2
    exit 1
  fi
  echo "$HELM_UNITTEST_VERSION" >"$bin/.helm-unittest-version"
fi
if ! "$venv/bin/check-jsonschema" --version 2>/dev/null | grep -q "$CHECK_JSONSCHEMA_VERSION" ||
  ! "$venv/bin/python" -c 'import yaml' 2>/dev/null; then
  echo "  installing check-jsonschema ${CHECK_JSONSCHEMA_VERSION} and PyYAML (venv)"
  rm -rf "$venv"
  if ! python3 -m venv "$venv" || ! "$venv/bin/pip" install --quiet --disable-pip-version-check \
    "check-jsonschema==${CHECK_JSONSCHEMA_VERSION}" PyYAML; then
    echo "cannot install check-jsonschema: needs python3-venv and PyPI" >&2
    exit 1
  fi
fi
sudo_cmd=()
[ "$(id -u)" = 0 ] || sudo_cmd=(sudo -n)
# apt_install PKG: install a Debian package, refreshing the package lists once if needed.
apt_install() {
  export DEBIAN_FRONTEND=noninteractive
  "${sudo_cmd[@]}" apt-get install -y --no-install-recommends "$1" >"$work/apt-$1.log" 2>&1 ||
    { "${sudo_cmd[@]}" apt-get update >>"$work/apt-$1.log" 2>&1 &&
      "${sudo_cmd[@]}" apt-get install -y --no-install-recommends "$1" >>"$work/apt-$1.log" 2>&1; } ||
    { cat "$work/apt-$1.log"; echo "cannot install $1: apt-get install $1 failed" >&2; exit 1; }
}
if ! command -v shellcheck >/dev/null; then
  echo "  installing shellcheck (Debian package)"
  apt_install shellcheck
fi
if ! command -v promtool >/dev/null; then
  echo "  installing promtool (Debian package prometheus)"
  before=$(pidof prometheus || true)
  apt_install prometheus
  # The package may start its service where an init system allows it: stop what it started.
  for pid in $(pidof prometheus || true); do
    case " $before " in *" $pid "*) ;; *) "${sudo_cmd[@]}" kill "$pid" || true ;; esac
  done
fi
flock -u 9
py=$venv/bin/python
jsonschema=$venv/bin/check-jsonschema
printf '  helm %s, actionlint %s, %s, check-jsonschema %s\n' "$HELM_VERSION" \
  "$(actionlint -version | head -n 1)" "$(promtool --version 2>&1 | head -n 1 | cut -d' ' -f1-3)" \
  "$CHECK_JSONSCHEMA_VERSION"

chart=charts/pressure-operator
crd_chart=charts/pressure-crds
regen="scripts/generate-manifests.sh (after scripts/check-packaging.sh has installed helm: PATH=$bin:\$PATH)"

# ---------------------------------------------------------------------------------------------
step "Helm charts"
check "helm lint $crd_chart" "fix the chart metadata in $crd_chart/Chart.yaml" \
  helm lint --strict "$crd_chart"
check "helm lint $chart (defaults)" "see the lint messages above" helm lint --strict "$chart"
for values in "$chart"/ci/*-values.yaml; do
  scenario=$(basename "$values" -values.yaml)
  check "helm lint $chart with ci/$scenario" "fix $values or the templates" \
    helm lint --strict "$chart" -f "$values"
  # shellcheck disable=SC2016 # expanded by the inner shell / a literal
  check "helm template $chart with ci/$scenario" "fix $values or the templates" \
    sh -c 'helm template pressure-operator "$1" --namespace pressure-system -f "$2" >"$3"' _ \
    "$chart" "$values" "$work/render-$scenario.yaml"
done

check "helm-unittest $chart (unittests/*_test.yaml)" "fix the template or the test named above" \
  helm-unittest --color=false -f 'unittests/*_test.yaml' "$chart"

schema_rejects() {
  ! helm template x "$chart" --set rbac.scope=everywhere >/dev/null 2>&1 &&
    ! helm template x "$chart" --set notAValue=1 >/dev/null 2>&1
}
check "values.schema.json rejects a bad enum and an unknown key" \
  "keep additionalProperties: false and the rbac.scope enum in $chart/values.schema.json" schema_rejects
check "values.schema.json is valid draft-07" "fix $chart/values.schema.json" \
  "$jsonschema" --check-metaschema "$chart/values.schema.json"
check "values.yaml and ci/*-values.yaml match values.schema.json" \
  "make $chart/values.yaml and ci/*.yaml agree with values.schema.json" \
  "$jsonschema" --schemafile "$chart/values.schema.json" "$chart/values.yaml" "$chart"/ci/*-values.yaml
# shellcheck disable=SC2016 # expanded by the inner shell / a literal
check "values.yaml names its schema on the first line" \
  "first line of $chart/values.yaml: # yaml-language-server: \$schema=values.schema.json" \
  grep -qx '# yaml-language-server: $schema=values.schema.json' <(head -n 1 "$chart/values.yaml")

# What the rendered chart must guarantee (the chart's unit tests).
rendered_properties() {
  "$py" - "$work" <<'PY'
import sys, yaml, pathlib
work = pathlib.Path(sys.argv[1])
def docs(name):
    return [d for d in yaml.safe_load_all((work / f"render-{name}.yaml").read_text()) if d]
def kinds(ds):
    return {d["kind"] for d in ds}
errors = []
def expect(cond, msg):
    if not cond:
        errors.append(msg)
for name in ("default", "namespace-scope", "kind", "servicemonitor"):
    ds = docs(name)
    dep = [d for d in ds if d["kind"] == "Deployment"]
    expect(len(dep) == 1, f"{name}: exactly one Deployment")
    if not dep:
        continue
    spec = dep[0]["spec"]["template"]["spec"]
    c = spec["containers"][0]
    sc, psc = c.get("securityContext", {}), spec.get("securityContext", {})
    expect(psc.get("runAsNonRoot") is True, f"{name}: pod runAsNonRoot")
    expect(isinstance(psc.get("runAsUser"), int) and psc["runAsUser"] > 0, f"{name}: numeric non-root runAsUser")
    expect(sc.get("readOnlyRootFilesystem") is True, f"{name}: readOnlyRootFilesystem")
    expect(sc.get("allowPrivilegeEscalation") is False, f"{name}: allowPrivilegeEscalation false")
    expect(sc.get("capabilities", {}).get("drop") == ["ALL"], f"{name}: drop ALL capabilities")
    expect(c.get("livenessProbe", {}).get("httpGet", {}).get("path") == "/healthz", f"{name}: liveness /healthz")
    expect(c.get("readinessProbe", {}).get("httpGet", {}).get("path") == "/readyz", f"{name}: readiness /readyz")
    expect("requests" in c.get("resources", {}), f"{name}: resource requests")
    expect("Service" in kinds(ds), f"{name}: metrics Service")
    for d in ds:
        for rule in d.get("rules", []) if d["kind"] in ("Role", "ClusterRole") else []:
            expect("*" not in rule.get("verbs", []) and "*" not in rule.get("resources", []),
                   f"{name}: no wildcard in {d['kind']} {d['metadata']['name']}")
    sel = dep[0]["spec"]["selector"]["matchLabels"]
    expect("helm.sh/chart" not in sel, f"{name}: selector without helm.sh/chart")
    expect(("ServiceMonitor" in kinds(ds)) == (name == "servicemonitor"), f"{name}: ServiceMonitor only when enabled")
default, ns = docs("default"), docs("namespace-scope")
expect({"ClusterRole", "ClusterRoleBinding"} <= kinds(default), "default: ClusterRole and binding (rbac.scope=cluster)")
expect(not ({"ClusterRole", "ClusterRoleBinding"} & kinds(ns)), "namespace scope: no cluster-wide RBAC")
nsdep = [d for d in ns if d["kind"] == "Deployment"][0]
expect("--watch-namespace=pressure-system" in nsdep["spec"]["template"]["spec"]["containers"][0]["args"],
       "namespace scope: --watch-namespace set")
kind = [d for d in docs("kind") if d["kind"] == "Deployment"][0]["spec"]["template"]["spec"]["containers"][0]
defimg = [d for d in default if d["kind"] == "Deployment"][0]["spec"]["template"]["spec"]["containers"][0]["image"]
chart_app = yaml.safe_load(pathlib.Path("charts/pressure-operator/Chart.yaml").read_text())["appVersion"]
# kind runs the archive of scripts/build-images.sh, loaded under the chart's default reference.
expect(kind["image"] == defimg and kind["imagePullPolicy"] == "IfNotPresent",
       "kind: the default image reference (what build-images.sh writes), IfNotPresent")
expect(defimg.endswith(":" + str(chart_app)), "default: image tag defaults to appVersion")
for e in errors:
    print(e)
sys.exit(1 if errors else 0)
PY
}
check "rendered chart: security, probes, resources, RBAC scope, image tag" \
  "fix the templates under $chart/templates" rendered_properties

rbac_matches_operator() {
  "$py" - "$work/render-default.yaml" operator/rbac.yaml <<'PY'
import sys, yaml
def triples(docs, kinds):
    # (kind, group, resource, verb, resourceNames): a Role (the Lease) must stay a Role and keep
    # naming only the operator's Lease.
    out = set()
    for d in docs:
        if d and d["kind"] in kinds:
            for r in d.get("rules", []):
                names = tuple(sorted(r.get("resourceNames", [])))
                out |= {(d["kind"], g, res, v, names) for g in r["apiGroups"] for res in r["resources"] for v in r["verbs"]}
    return out
chart = triples(yaml.safe_load_all(open(sys.argv[1])), {"ClusterRole", "Role"})
operator = triples(yaml.safe_load_all(open(sys.argv[2])), {"ClusterRole", "Role"})
for t in sorted(operator - chart):
    print("in operator/rbac.yaml, not in the chart:", t)
for t in sorted(chart - operator):
    print("in the chart, not in operator/rbac.yaml:", t)
sys.exit(1 if chart != operator else 0)
PY
}
check "chart RBAC grants exactly the rules of operator/rbac.yaml" \
  "update charts/pressure-operator/templates/rbac.yaml to the operator's rules, then $regen" rbac_matches_operator

# ---------------------------------------------------------------------------------------------
step "Plain manifests (deploy/manifests)"
manifests_fresh() {
  "$root/scripts/generate-manifests.sh" "$work/manifests" && diff -ru deploy/manifests "$work/manifests"
}
check "deploy/manifests equals a fresh render of the charts" "run $regen and commit" manifests_fresh

# ---------------------------------------------------------------------------------------------
step "Prometheus and the Grafana dashboard"
dashboard=deploy/observability/dashboards/mailproxy-pressure.json
prom_config=deploy/observability/prometheus/prometheus.yml
check "promtool check config $prom_config" "fix $prom_config" promtool check config "$prom_config"

# Every PromQL expression of the dashboard, Grafana macros substituted, as recording rules.
extract_promql() {
  "$py" - "$dashboard" "$work/dashboard-rules.yml" "$work/dashboard-exprs.txt" <<'PY'
import json, re, sys, yaml
dash = json.load(open(sys.argv[1]))
macros = {"__rate_interval": "5m", "__interval": "1m", "__range": "1h", "__range_s": "3600",
          "__interval_ms": "60000"}
def substitute(expr):
    expr = re.sub(r"\$\{?(__\w+)\}?", lambda m: macros.get(m.group(1), "1m"), expr)
    return re.sub(r"\$\{?\w+(?::\w+)?\}?", ".*", expr)
def panels(ps):
    for p in ps:
        yield p
        yield from panels(p.get("panels", []))
rules, exprs = [], []
for p in panels(dash.get("panels", [])):
    for t in p.get("targets", []):
        if t.get("expr"):
            e = substitute(t["expr"])
            rules.append({"record": f"dashboard:panel_{p['id']}_{t.get('refId', 'A')}", "expr": e})
            exprs.append(e)
for v in dash.get("templating", {}).get("list", []):
    q = v.get("query")
    q = q.get("query") if isinstance(q, dict) else q
    m = re.match(r"^\s*(?:label_values|query_result)\((.*)\)\s*$", q or "")
    if v.get("type") == "query" and m:
        inner = m.group(1).rsplit(",", 1)[0] if q.strip().startswith("label_values") and "," in m.group(1) else m.group(1)
        exprs.append(substitute(inner)); rules.append({"record": f"dashboard:var_{v['name']}", "expr": substitute(inner)})
if not rules:
    sys.exit("no PromQL found in the dashboard")
yaml.safe_dump({"groups": [{"name": "dashboard-mailproxy-pressure", "rules": rules}]}, open(sys.argv[2], "w"))
open(sys.argv[3], "w").write("\n".join(exprs) + "\n")
print(f"{len(rules)} expressions")
PY
}
check "dashboard PromQL extracted" "fix $dashboard (valid JSON with panels[].targets[].expr)" extract_promql
check "dashboard PromQL parses (promtool check rules)" "fix the expressions named above in $dashboard" \
  promtool check rules "$work/dashboard-rules.yml"

dashboard_shape() {
  "$py" - "$dashboard" <<'PY'
import json, sys
d = json.load(open(sys.argv[1]))
errors = []
want = {"uid": "mailproxy-pressure", "title": "Mail Proxy - Pressure Test", "refresh": "5s"}
for k, v in want.items():
    if d.get(k) != v:
        errors.append(f"{k} is {d.get(k)!r}, want {v!r}")
def panels(ps):
    for p in ps:
        yield p
        yield from panels(p.get("panels", []))
ids = [p["id"] for p in panels(d["panels"])]
if len(ids) != len(set(ids)):
    errors.append("panel ids are not unique")
titles = {p.get("title") for p in panels(d["panels"])}
for t in ("Pending Messages", "Total Sent", "Total Errors", "Total Deferred", "Rate Limited",
          "Cumulative Sent by Account"):
    if t not in titles:
        errors.append(f"seed panel {t!r} missing")
if not any("per second" in (t or "") and "Send Rate" in t for t in titles):
    errors.append("the send-rate panel must say it is per second")
for p in panels(d["panels"]):
    for t in p.get("targets", []):
        if t.get("datasource", p.get("datasource", {})).get("uid") != "prometheus":
            errors.append(f"panel {p['id']} target {t.get('refId')}: datasource uid must be 'prometheus'")
exprs = " ".join(t.get("expr", "") for p in panels(d["panels"]) for t in p.get("targets", []))
for needle in ("gmp_delivery_latency_seconds_bucket", "gmp_send_duration_seconds_bucket", "client_sim_", "sink_"):
    if needle not in exprs:
        errors.append(f"no panel uses {needle}")
print("\n".join(errors))
sys.exit(1 if errors else 0)
PY
}
check "dashboard uid/title/refresh, seed panels, latency and client/sink panels" "fix $dashboard" dashboard_shape

# Grafana cannot run here (AGPL source, no image to pull; the kind workflow runs it): what can be
# checked without it is that the compose provisioning fits together. The operator's own
# provisioning is checked by operator/src/reconcile/tests.rs (grafana_is_provisioned_...).
grafana_provisioning() {
  "$py" - deploy/compose/docker-compose.pressure.yml deploy/observability <<'PY'
import glob, json, os, sys, yaml
compose_path, obs = sys.argv[1:3]
compose = yaml.safe_load(open(compose_path))
errors = []
svc = compose["services"]["grafana"]
mounts = {}
for v in svc.get("volumes", []):
    src, dst = v.split(":")[:2]
    mounts[os.path.normpath(os.path.join(os.path.dirname(compose_path), src))] = dst
prov_dir = os.path.join(obs, "grafana", "provisioning")
dash_dir = os.path.join(obs, "dashboards")
if mounts.get(os.path.normpath(prov_dir)) != "/etc/grafana/provisioning":
    errors.append(f"{prov_dir} is not mounted at /etc/grafana/provisioning (mounts: {mounts})")
dash_mount = mounts.get(os.path.normpath(dash_dir))
uids = set()
for f in glob.glob(os.path.join(dash_dir, "*.json")):
    def panels(ps):
        for p in ps:
            yield p
            yield from panels(p.get("panels", []))
    for p in panels(json.load(open(f))["panels"]):
        for t in p.get("targets", []):
            uids.add(t.get("datasource", p.get("datasource", {})).get("uid"))
sources = []
for f in glob.glob(os.path.join(prov_dir, "datasources", "*.y*ml")):
    d = yaml.safe_load(open(f))
    if d.get("apiVersion") != 1:
        errors.append(f"{f}: apiVersion must be 1")
    sources += d.get("datasources", [])
by_uid = {s.get("uid"): s for s in sources}
for uid in sorted(uids, key=str):
    s = by_uid.get(uid)
    if not s:
        errors.append(f"the dashboards use datasource uid {uid!r}, which no provisioned datasource has")
    elif s.get("type") != "prometheus" or s.get("url") != "http://prometheus:9090":
        errors.append(f"datasource {uid!r}: type prometheus at http://prometheus:9090 (the compose service) expected, got {s}")
if "prometheus" not in compose["services"]:
    errors.append("no compose service 'prometheus' for the datasource's URL")
paths = []
for f in glob.glob(os.path.join(prov_dir, "dashboards", "*.y*ml")):
    d = yaml.safe_load(open(f))
    if d.get("apiVersion") != 1:
        errors.append(f"{f}: apiVersion must be 1")
    for prov in d.get("providers", []):
        if prov.get("type") != "file":
            errors.append(f"{f}: provider {prov.get('name')} is not of type file")
        paths.append((prov.get("options") or {}).get("path"))
if dash_mount not in paths:
    errors.append(f"no dashboard provider reads {dash_mount}, where {dash_dir} is mounted (providers: {paths})")
home = svc.get("environment", {}).get("GF_DASHBOARDS_DEFAULT_HOME_DASHBOARD_PATH", "")
if home and (os.path.dirname(home) != dash_mount or not os.path.exists(os.path.join(dash_dir, os.path.basename(home)))):
    errors.append(f"GF_DASHBOARDS_DEFAULT_HOME_DASHBOARD_PATH {home} is not a dashboard of {dash_dir}")
print("\n".join(errors))
sys.exit(1 if errors else 0)
PY
}
check "Grafana provisioning (compose): datasource uid and URL, dashboard provider path, home dashboard" \
  "fix deploy/observability/grafana/provisioning or the grafana service of deploy/compose/docker-compose.pressure.yml" \
  grafana_provisioning

# ---------------------------------------------------------------------------------------------
step "Metric names used by the dashboard exist on the real components"
free_port() { "$py" -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
# wait_http URL LOG: up to 60 s for a 200.
wait_http() {
  local _
  for _ in $(seq 120); do
    if "$py" -c 'import sys,urllib.request; urllib.request.urlopen(sys.argv[1], timeout=2)' "$1" 2>/dev/null; then
      return 0
    fi
    sleep 0.5
  done
  echo "$1 did not answer within 60 s; log:"
  tail -n 30 "$2"
  return 1
}
scrape() { "$py" -c 'import sys,urllib.request; sys.stdout.write(urllib.request.urlopen(sys.argv[1], timeout=5).read().decode())' "$1"; }

components_up() {
  local proxy=$target/debug/mailproxy client=$target/debug/client-sim
  # A no-op when the test command's cargo test already built them; never a stale binary.
  echo "cargo build -p mailproxy -p client-sim (into $target)"
  CARGO_TARGET_DIR=$target cargo build -q -p mailproxy -p client-sim || return 1
  local pp cp sp sh
  pp=$(free_port) cp=$(free_port) sp=$(free_port) sh=$(free_port)
  mkdir -p "$work/proxy"
  GMP_HOST=127.0.0.1 GMP_PORT=$pp GMP_DB_PATH="$work/proxy/mail_service.db" GMP_LOG_LEVEL=WARNING \
    GMP_SPOOL_DIR="$work/proxy" MAIL_PROXY_ENCRYPTION_KEY=$(head -c 32 /dev/urandom | base64) \
    GMP_API_TOKEN=check-packaging "$proxy" >"$work/proxy.log" 2>&1 &
  pids+=($!)
  "$client" serve --listen 127.0.0.1 --port "$cp" --profile standard --tenant-id tenant-standard \
    >"$work/client.log" 2>&1 &
  pids+=($!)
  "$client" sink --smtp-listen "127.0.0.1:$sp" --http-listen "127.0.0.1:$sh" >"$work/sink.log" 2>&1 &
  pids+=($!)
  wait_http "http://127.0.0.1:$pp/health" "$work/proxy.log" &&
    wait_http "http://127.0.0.1:$cp/health" "$work/client.log" &&
    wait_http "http://127.0.0.1:$sh/health" "$work/sink.log" || return 1
  "$proxy" healthcheck --url "http://127.0.0.1:$pp/health" || { echo "mailproxy healthcheck failed"; return 1; }
  "$client" healthcheck --url "http://127.0.0.1:$cp/health" || { echo "client-sim healthcheck failed"; return 1; }
  scrape "http://127.0.0.1:$pp/metrics" >"$work/metrics-proxy.txt" &&
    scrape "http://127.0.0.1:$cp/metrics" >"$work/metrics-client.txt" &&
    scrape "http://127.0.0.1:$sh/metrics" >"$work/metrics-sink.txt"
}
metric_names_exposed() {
  "$py" - "$work/dashboard-exprs.txt" "$work"/metrics-*.txt <<'PY'
import re, sys
exposed = set()
for path in sys.argv[2:]:
    for line in open(path):
        m = re.match(r"#\s*TYPE\s+(\S+)\s+(\S+)", line)
        if m:
            name, kind = m.groups()
            exposed.add(name)
            if kind == "counter":
                exposed.add(name if name.endswith("_total") else name + "_total")
            elif kind in ("histogram", "summary"):
                exposed.update({name + "_sum", name + "_count"})
                if kind == "histogram":
                    exposed.add(name + "_bucket")
            elif kind == "info":
                exposed.add(name + "_info")
        elif line.strip() and not line.startswith("#"):
            exposed.add(re.match(r"[a-zA-Z_:][a-zA-Z0-9_:]*", line).group(0))
skip = {"by", "without", "on", "ignoring", "group_left", "group_right", "bool", "and", "or",
        "unless", "offset", "inf", "nan"}
def names(expr):
    s = re.sub(r'"(?:[^"\\]|\\.)*"|\'(?:[^\'\\]|\\.)*\'', '""', expr)
    s = re.sub(r"\{[^}]*\}", "", s)
    s = re.sub(r"\[[^\]]*\]", "", s)
    s = re.sub(r"\b(by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)", "", s)
    out = set()
    for m in re.finditer(r"[a-zA-Z_:][a-zA-Z0-9_:]*", s):
        if s[m.end():].lstrip().startswith("(") or m.group(0).lower() in skip:
            continue
        if m.start() > 0 and (s[m.start() - 1].isdigit() or s[m.start() - 1] == "."):
            continue
        out.add(m.group(0))
    return out
used = set()
for e in open(sys.argv[1]).read().splitlines():
    used |= names(e)
missing = sorted(used - exposed)
print(f"{len(used)} metric names used, {len(exposed)} exposed by mailproxy, client-sim serve and sink")
if missing:
    print("not exposed by any component:", ", ".join(missing))
sys.exit(1 if missing else 0)
PY
}
check "mailproxy, client-sim serve and sink start, answer healthcheck and /metrics" \
  "see the logs above; build with: cargo build -p mailproxy -p client-sim" components_up
check "every metric in the dashboard is exposed" \
  "rename the series in $dashboard to what proxy/src/metrics.rs and client-sim expose" metric_names_exposed

# ---------------------------------------------------------------------------------------------
step "Compose file"
compose=deploy/compose/docker-compose.pressure.yml
check "compose file matches the compose-spec schema" "fix $compose" \
  "$jsonschema" --builtin-schema vendor.compose-spec "$compose"
compose_semantics() {
  "$py" - "$compose" "$prom_config" <<'PY'
import os, sys, yaml
path = sys.argv[1]
base = os.path.dirname(path)
c = yaml.safe_load(open(path))
prom = yaml.safe_load(open(sys.argv[2]))
s = c["services"]
errors = []
def expect(cond, msg):
    if not cond:
        errors.append(msg)
for name in ("db", "mailproxy", "mailhog", "prometheus", "grafana", "setup", "client-high-volume",
             "client-standard", "client-newsletter", "client-documents"):
    expect(name in s, f"service {name} missing")
for name, svc in s.items():
    b = svc.get("build")
    if b:
        ctx = os.path.join(base, b["context"])
        expect(os.path.isfile(os.path.join(ctx, b["dockerfile"])), f"{name}: dockerfile {b['dockerfile']} not found")
    for v in svc.get("volumes", []):
        src = v.split(":")[0]
        if src.startswith("."):
            expect(os.path.exists(os.path.join(base, src)), f"{name}: bind mount {src} does not exist")
    expect("container_name" not in svc, f"{name}: container_name prevents --scale")
def ports(name):
    # "HOST_IP:HOST_PORT:CONTAINER_PORT"; HOST_IP is "${PRESSURE_HOST_IP:-127.0.0.1}" (has colons).
    return [str(p).rsplit(":", 2) for p in s[name].get("ports", [])]
for name in s:
    for p in ports(name):
        expect(len(p) == 3 and p[0] == "${PRESSURE_HOST_IP:-127.0.0.1}",
               f"{name}: host port {':'.join(p)} not published on ${{PRESSURE_HOST_IP:-127.0.0.1}}")
for name, port in (("client-standard", "8082"), ("client-newsletter", "8084"),
                   ("client-documents", "8085"), ("grafana", "3000"), ("mailhog", "8025")):
    expect(any(p[1] == port for p in ports(name)), f"{name}: host port {port}")
# The seed scales these two: a fixed host port cannot serve three replicas, and podman refuses
# a host port range for one container port, so the engine picks a free port per replica.
for name in ("mailproxy", "client-high-volume"):
    expect(ports(name) and all(p[1] == "" for p in ports(name)),
           f"{name}: no fixed host port (\"${{PRESSURE_HOST_IP:-127.0.0.1}}::PORT\") so --scale works")
env = s["mailproxy"]["environment"]
for k, v in {"GMP_API_TOKEN": "pressure-test-token", "GMP_SYNC_INTERVAL": "5", "GMP_SEND_LOOP_INTERVAL": "1",
             "GMP_BATCH_SIZE_PER_ACCOUNT": "50", "GMP_POOL_SIZE": "20"}.items():
    expect(str(env.get(k)) == v, f"mailproxy: {k}={v}")
expect(str(env.get("GMP_DB_PATH", "")).startswith("postgresql://"), "mailproxy: GMP_DB_PATH on PostgreSQL")
expect("MAIL_PROXY_ENCRYPTION_KEY" in env, "mailproxy: MAIL_PROXY_ENCRYPTION_KEY")
expect("healthcheck" in s["mailproxy"]["healthcheck"]["test"], "mailproxy: healthcheck via `mailproxy healthcheck`")
expect(s["setup"]["depends_on"]["mailproxy"]["condition"] == "service_healthy", "setup waits for a healthy proxy")
expect(s["setup"].get("command") == ["setup"], "setup runs `client-sim setup`")
seed = {"client-high-volume": ("high-volume-1", "tenant-high-volume", "20", "0.1", "0.02", "0.05"),
        "client-standard": ("standard-1", "tenant-standard", "5", "0.3", "0.05", "0.1"),
        "client-newsletter": ("newsletter-1", "tenant-newsletter", "50", "0.5", "0.1", "0.15"),
        "client-documents": ("documents-1", "tenant-documents", "2", "0.2", "0.05", "0.5")}
keys = ("CLIENT_ID", "TENANT_ID", "MSG_RATE_PER_SYNC", "ATTACHMENT_CACHE_HIT_RATE", "DND_PROBABILITY", "LARGE_ATTACHMENT_RATE")
for name, values in seed.items():
    e = s[name]["environment"]
    for k, v in zip(keys, values):
        expect(str(e.get(k)) == v, f"{name}: {k}={v} (seed)")
# Prometheus must discover every proxy replica and client through Docker DNS.
jobs = {j["job_name"]: j for j in prom["scrape_configs"]}
def dns_names(job):
    return {n for sd in jobs.get(job, {}).get("dns_sd_configs", []) for n in sd["names"]}
expect("mailproxy" in dns_names("mailproxy"), "prometheus: dns_sd_configs on the mailproxy service")
expect(set(seed) <= dns_names("clients"), "prometheus: dns_sd_configs on the four clients")
for job in jobs.values():
    for sd in job.get("dns_sd_configs", []):
        for n in sd["names"]:
            expect(n in s, f"prometheus job {job['job_name']}: {n} is not a compose service")
print("\n".join(errors))
sys.exit(1 if errors else 0)
PY
}
check "compose file reproduces the seed (services, ports, env, setup, scrape targets)" "fix $compose" compose_semantics

# ---------------------------------------------------------------------------------------------
step "Dockerfiles"
dockerfiles_sane() {
  "$py" - deploy/docker/*.Dockerfile <<'PY'
import re, sys
errors = []
for path in sys.argv[1:]:
    text = open(path).read()
    crate = {"mailproxy": "mailproxy", "client-sim": "client-sim", "operator": "pressure-operator"}[
        path.rsplit("/", 1)[1].split(".")[0]]
    if f"cargo build --release -p {crate} --locked" not in text:
        errors.append(f"{path}: builds with cargo build --release -p {crate} --locked")
    if not re.search(r"^FROM \$\{RUST_IMAGE\} AS build|^FROM rust:1\.95", text, re.M) or "rust:1.95-bookworm" not in text:
        errors.append(f"{path}: rust:1.95-bookworm builder stage")
    users = re.findall(r"^USER\s+(\S+)", text, re.M)
    if not users or not re.fullmatch(r"[1-9][0-9]*(:[0-9]+)?", users[-1]):
        errors.append(f"{path}: final USER must be a numeric non-root uid")
    hc = re.search(r"^HEALTHCHECK\s+((?:[^\n]*\\\n)*[^\n]*)", text, re.M)
    if not hc:
        errors.append(f"{path}: HEALTHCHECK missing")
    elif re.search(r"\b(curl|wget)\b", hc.group(1)):
        errors.append(f"{path}: HEALTHCHECK must not need curl or wget")
    if not hc or "healthcheck" not in hc.group(1):
        errors.append(f"{path}: HEALTHCHECK uses the binary's healthcheck subcommand")
    if "libssl3" not in text:
        errors.append(f"{path}: runtime needs libssl3 (native-tls / openssl)")
if errors:
    print("\n".join(errors))
sys.exit(1 if errors else 0)
PY
}
check "Dockerfiles: locked release build, non-root numeric USER, curl-free HEALTHCHECK" \
  "fix deploy/docker/*.Dockerfile" dockerfiles_sane
# scripts/build-images.sh takes each image's settings from these Dockerfiles and its reference
# from the chart and the CRD defaults: both must be readable and name the same version.
images_inputs_readable() {
  python3 - <<'PY'
import sys
sys.path.insert(0, "scripts/lib")
import image_recipes
from dockerfile import final_stage
for name, path in image_recipes.DOCKERFILES.items():
    s = final_stage(open(path).read())
    print(f"{name}: entrypoint {s['entrypoint']}, user {s['user']}, ports {s['ports']}")
refs = image_recipes.references()
print(refs)
versions = {refs[n].rsplit(":", 1)[1] for n in image_recipes.DOCKERFILES}
sys.exit(0 if len(versions) == 1 else f"chart and CRD defaults name different versions: {versions}")
PY
}
check "image helpers' unit tests (scripts/lib/test_images.py)" "fix scripts/lib or the test named above" \
  python3 -m unittest discover -s scripts/lib -p test_images.py
check "build-images.sh reads the Dockerfiles, the chart's image and the CRD defaults" \
  "keep deploy/docker/*.Dockerfile to the instructions scripts/lib/dockerfile.py reads, one version everywhere" \
  images_inputs_readable
check ".dockerignore excludes target folders and .git" "add target* and .git to .dockerignore" \
  sh -c 'grep -qx "target" .dockerignore && grep -qx "target-\*" .dockerignore && grep -qx ".git" .dockerignore'

# ---------------------------------------------------------------------------------------------
step "GitHub workflows"
check "shellcheck of the packaging scripts" "fix the lines named above" \
  shellcheck scripts/check-packaging.sh scripts/check-packaging-cluster.sh scripts/generate-manifests.sh \
  scripts/build-images.sh scripts/check-images.sh scripts/lib/postgres-entrypoint.sh scripts/check-compose.sh
check "actionlint .github/workflows (with shellcheck on run: blocks)" "fix the workflow lines named above" \
  actionlint -no-color .github/workflows/*.yml
check "workflows match the GitHub workflow schema" "fix .github/workflows/*.yml" \
  "$jsonschema" --builtin-schema vendor.github-workflows .github/workflows/*.yml
actions_pinned() {
  local bad
  bad=$(grep -nE '^\s*(-\s*)?uses:' .github/workflows/*.yml | grep -vE 'uses:\s*[^@[:space:]]+@[0-9a-f]{40}(\s|$)' || true)
  [ -z "$bad" ] || { echo "not pinned by a full commit SHA:"; echo "$bad"; return 1; }
}
check "every action pinned by a full commit SHA" "pin with uses: owner/repo@<40-hex sha> # vX.Y.Z" actions_pinned

# ---------------------------------------------------------------------------------------------
if [ "${#failures[@]}" -gt 0 ]; then
  printf '\n%d packaging check(s) failed:\n' "${#failures[@]}"
  printf '  - %s\n' "${failures[@]}"
  exit 1
fi
printf '\nAll packaging checks passed.\n'
