#!/usr/bin/env python3
"""Asks a running Prometheus every PromQL expression of the shipped Grafana dashboards, and
checks its scrape targets: the proof that the dashboard's panels show data from what the
operator deployed (issue 14 item 2). e2e/real-node-operator.sh --prometheus runs it against the
PressureTest's own Prometheus (through `kubectl port-forward`) while the load runs.

    e2e/dashboard_queries.py --url http://127.0.0.1:PORT [--dashboards DIR] \
        [--job mailproxy --job sink --job 'client-*'] [--list]

Checks, each printed:
  - every PromQL expression (`targets[].expr` of every panel, rows' nested panels included, of
    every *.json in --dashboards, default deploy/observability/dashboards) is read from the JSON
    itself, Grafana's variables are substituted (`$__rate_interval` -> 1m: the panels' window at
    the operator's 5 s scrape interval is 20 s, 1m keeps a rate defined right after a pod
    restart; `$__interval` -> 15s; `$__range` -> 5m; a dashboard variable -> its current
    value, `.*` for "All"), and an instant query must answer `success` with at least one
    series (a renamed metric, a wrong label or a broken expression answers nothing);
  - every --job (a job name or a glob) has at least one active target, and every active target
    of those jobs is `up`.
Exit status: 0 all passed; 1 a check failed (each failure is listed); 2 bad input or
Prometheus did not answer. No timing is asserted: the caller repeats the check while the load
runs and keeps the last answer.
"""

import argparse
import fnmatch
import glob
import json
import os
import re
import sys
import urllib.error
import urllib.parse
import urllib.request

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
# Grafana's built-in interval variables, as the panels would get them at a 5 s scrape interval.
BUILTIN = {"__rate_interval": "1m", "__interval": "15s", "__interval_ms": "15000", "__range": "5m",
           "__range_s": "300", "__range_ms": "300000"}
VARIABLE = re.compile(r"\$(?:\{(\w+)(?::\w+)?\}|(\w+)|\[\[(\w+)\]\])")


class InputError(Exception):
    """The dashboard cannot be read, or names a variable this check cannot substitute."""


def panels(nodes):
    """Every panel, rows' nested panels included."""
    for p in nodes or []:
        yield p
        yield from panels(p.get("panels"))


def variables(dashboard):
    """name -> value of each dashboard variable: its current value, `.*` for "All"."""
    out = {}
    for v in (dashboard.get("templating") or {}).get("list", []):
        current = (v.get("current") or {}).get("value")
        if isinstance(current, list):
            current = "|".join(current)
        if current in (None, "", "$__all") or v.get("includeAll") and current in ("All", "$__all"):
            current = ".*"
        out[v["name"]] = current
    return out


def substitute(expr, values, where):
    def one(m):
        name = m.group(1) or m.group(2) or m.group(3)
        if name in values:
            return values[name]
        raise InputError(f"{where}: no value for the variable ${name} in {expr!r}")
    return VARIABLE.sub(one, expr)


def expressions(folder):
    """(file, panel title, raw expr, expr to send) for every target of every dashboard."""
    files = sorted(glob.glob(os.path.join(folder, "*.json")))
    if not files:
        raise InputError(f"no dashboard (*.json) in {folder}")
    out = []
    for path in files:
        try:
            with open(path) as f:
                d = json.load(f)
        except (OSError, ValueError) as e:
            raise InputError(f"{path}: {e}") from e
        values = {**BUILTIN, **variables(d)}
        for p in panels(d.get("panels")):
            for t in p.get("targets") or []:
                expr = (t.get("expr") or "").strip()
                if not expr:
                    continue
                where = f"{os.path.basename(path)}: panel {p.get('title')!r}"
                out.append((os.path.basename(path), p.get("title"), expr, substitute(expr, values, where)))
    if not out:
        raise InputError(f"the dashboards in {folder} hold no PromQL expression")
    return out


def get(url, path, params=None):
    full = f"{url.rstrip('/')}{path}" + (f"?{urllib.parse.urlencode(params)}" if params else "")
    try:
        with urllib.request.urlopen(full, timeout=20) as r:
            return json.load(r)
    except urllib.error.HTTPError as e:  # a bad expression answers 400 with an error body
        try:
            return json.load(e)
        except ValueError:
            return {"status": "error", "error": f"HTTP {e.code}"}


def check_queries(url, exprs):
    failures = []
    for file, title, raw, expr in exprs:
        answer = get(url, "/api/v1/query", {"query": expr})
        data = answer.get("data") or {}
        result = data.get("result")
        series = len(result) if isinstance(result, list) and data.get("resultType") in ("vector", "matrix") \
            else (1 if result else 0)
        ok = answer.get("status") == "success" and series > 0
        sample = ""
        if ok and data.get("resultType") == "vector":
            sample = " e.g. " + ", ".join(
                f"{json.dumps(s.get('metric', {}), sort_keys=True)}={s['value'][1]}" for s in result[:2])
        print(f"{'ok  ' if ok else 'FAIL'} {series:3d} series  {title}: {raw}{sample}")
        if not ok:
            failures.append(f"{file} panel {title!r}: {raw} -> "
                            f"{answer.get('error') or 'no data (empty result)'}")
    return failures


def check_targets(url, jobs):
    answer = get(url, "/api/v1/targets", {"state": "active"})
    if answer.get("status") != "success":
        return [f"/api/v1/targets: {answer.get('error')}"]
    active = answer["data"]["activeTargets"]
    failures = []
    for pattern in jobs:
        mine = [t for t in active if fnmatch.fnmatchcase(t["labels"].get("job", ""), pattern)]
        if not mine:
            failures.append(f"job {pattern}: no active target (jobs: "
                            f"{sorted({t['labels'].get('job') for t in active})})")
        for t in mine:
            ok = t["health"] == "up"
            print(f"{'ok  ' if ok else 'FAIL'} target {t['labels'].get('job')} {t['scrapeUrl']} "
                  f"health={t['health']} {t.get('lastError') or ''}".rstrip())
            if not ok:
                failures.append(f"target {t['scrapeUrl']} of job {t['labels'].get('job')}: "
                                f"{t['health']} {t.get('lastError')}")
    return failures


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--url", help="Prometheus' base URL")
    ap.add_argument("--dashboards", default=os.path.join(REPO, "deploy", "observability", "dashboards"))
    ap.add_argument("--job", action="append", default=[], help="a job (or glob) whose targets must be up")
    ap.add_argument("--list", action="store_true", help="print the expressions as sent, ask nothing")
    args = ap.parse_args()
    try:
        exprs = expressions(args.dashboards)
    except InputError as e:
        print(f"dashboard_queries: {e}", file=sys.stderr)
        return 2
    if args.list:
        for _, title, _, expr in exprs:
            print(f"{title}: {expr}")
        return 0
    if not args.url:
        ap.error("--url is needed unless --list")
    try:
        failures = check_targets(args.url, args.job) + check_queries(args.url, exprs)
    except (OSError, ValueError) as e:
        print(f"dashboard_queries: Prometheus at {args.url} did not answer: {e}", file=sys.stderr)
        return 2
    print(f"{len(exprs)} expressions from {args.dashboards}, {len(args.job)} jobs: "
          f"{'all passed' if not failures else f'{len(failures)} failed'}")
    for f in failures:
        print(f"FAILED: {f}")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
