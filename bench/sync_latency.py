#!/usr/bin/env python3
"""Sync-path latency benchmark of the mail proxy (issue 9): mail enters through the real sync path
(the proxy calls the tenant applications' `/sync`, enqueues the messages of the answer on durable
PostgreSQL, sends them over SMTP to our verifying sink). Prints a table and writes JSON.

Measured interval: the tenant application stamps `X-Pressure-Created-Us` while it builds the sync
answer that carries the message (after any wait for the proxy's call, so the sync interval is
outside); the sink subtracts it from its acceptance time (after the final `.`, before its 250).
So the figure is "sync response built → SMTP acceptance": the proxy's "sync response received →
SMTP acceptance" plus the answer's serialisation and loopback transfer (well under 1 ms for small
answers). The proxy's own histogram (gmp_delivery_latency_seconds, enqueue → outcome written, with
100 ms as its first bucket) is too coarse for a 10 ms goal; its ≤100 ms share is shown as a check.

Columns besides latency: sync calls per second and messages per call (the proxy's
gmp_sync_duration_seconds count), the mean call time (the same histogram: the HTTP call, including
the stub's wait in small-stream, plus the enqueue), the share of the proxy's own histogram at or
under 100 ms, CPU-seconds per 1,000 messages (proxy, PostgreSQL, sink, client-sim apps), database
round trips per message, proxy peak RSS.

Tenant applications (--app):
- `small` (default): bench/tenant_stub.py, small messages only, the proxy's own sync cadence (one
  call per tenant per second: each call hands over a second of mail in one burst).
- `small-stream`: the same stub answering `queued: 1` and every --period seconds (steady arrival).
- `client-sim`: one `client-sim serve` per tenant, the seed's draws (60% of messages with an
  attachment of 10 KB to 2 MB fetched from the client over HTTP, 30% MD5 markers); its messages
  per sync are set from the rate (one call per tenant per second).

Usage: bench/sync_latency.py --rates 1250 --duration 60 --warmup 15      (1,250 = half of 2,500)
       bench/sync_latency.py --app small-stream --rates 1250
       bench/sync_latency.py --app client-sim --rates 100
"""
import argparse, os, sys, time

from lib import (Stack, binaries, cpu_seconds, free_port, http, load_average, metric_sum, peak_rss_mb,
                 print_table, sink_ceiling, wait_http, write_json)
from tenant_stub import TenantStub


def serve_apps(stack, bins, rate, args, tag, stop_at):
    """One client-sim serve per tenant, registered with the proxy; returns (processes, tenant ids)."""
    procs, tenants = [], []
    per_sync = rate / args.tenants  # one call per tenant per second
    for i in range(args.tenants):
        port, tenant = free_port(), f"{tag}-t{i}"
        p = stack.spawn([bins["client-sim"], "serve", "--port", str(port), "--tenant-id", tenant, "--client-id", tenant,
                         "--msg-rate-per-sync", str(per_sync), "--dnd-probability", "0", "--large-attachment-rate", str(args.large_rate),
                         "--attachment-cache-hit-rate", "0.3", "--seed", str(1000 + i), "--run-id", tag, "--stop-at", str(stop_at)])
        wait_http(f"http://127.0.0.1:{port}/health")
        stack.add_tenant(tenant, f"http://127.0.0.1:{port}")
        procs.append(p); tenants.append(tenant)
    return procs, tenants


def sync_figures(metrics):
    return {"calls": metric_sum(metrics, "gmp_sync_duration_seconds_count"), "seconds": metric_sum(metrics, "gmp_sync_duration_seconds_sum"),
            "lat_count": metric_sum(metrics, "gmp_delivery_latency_seconds_count"),
            "lat_le_100ms": metric_sum(metrics, "gmp_delivery_latency_seconds_bucket", 'le="0.1"')}


def run_rate(stack, bins, stub, rate, args, idx):
    tag = f"r{idx}-{rate}"
    if stub:
        stub.set_rate(rate); procs = []
        measure_end = time.time() + args.warmup + args.duration
    else:
        measure_end = time.time() + args.tenants * 0.5 + 2 + args.warmup + args.duration
        procs, _ = serve_apps(stack, bins, rate, args, tag, stop_at=measure_end)
    time.sleep(max(0.0, measure_end - args.duration - time.time()))
    stack.reset_sink()
    app_pids = [p.pid for p in procs]
    a, app_a = stack.sample(), cpu_seconds(app_pids)
    sa = sync_figures(a["metrics"])
    time.sleep(max(0.0, measure_end - time.time()))
    b = stack.sample(); sb = sync_figures(b["metrics"]); app_b = cpu_seconds(app_pids)
    if stub:
        stub.set_rate(0)
    stack.drain()
    for p in procs:
        p.terminate()
    dt = b["t"] - a["t"]; delivered = b["delivered"] - a["delivered"]
    calls = sb["calls"] - sa["calls"]
    per_k = lambda x, y: round((y - x) / max(1, delivered) * 1000, 3)
    lat = b["latency"]
    hist_n = sb["lat_count"] - sa["lat_count"]
    return {"app": args.app, "offered_per_s": rate, "delivered_per_s": round(delivered / dt, 1),
            "backlog_slope_per_s": round((b["pending"] - a["pending"]) / dt, 1),
            "latency_ms": lat, "p50_ms": lat.get("p50"), "p95_ms": lat.get("p95"), "p99_ms": lat.get("p99"), "max_ms": lat.get("max"),
            "sync_calls_per_s": round(calls / dt, 1), "msgs_per_sync": round(delivered / max(1, calls), 1),
            "sync_call_ms_mean": round((sb["seconds"] - sa["seconds"]) / max(1, calls) * 1000, 2),
            "proxy_hist_le_100ms_share": round((sb["lat_le_100ms"] - sa["lat_le_100ms"]) / hist_n, 3) if hist_n else None,
            "attachment_mismatches": b["sink"]["total"].get("attachment_mismatches"), "duplicates": b["sink"]["total"].get("duplicates"),
            "proxy_cpu_s_per_1000": per_k(a["proxy_cpu"], b["proxy_cpu"]), "postgres_cpu_s_per_1000": per_k(a["pg_cpu"], b["pg_cpu"]),
            "sink_cpu_s_per_1000": per_k(a["sink_cpu"], b["sink_cpu"]), "app_cpu_s_per_1000": per_k(app_a, app_b) if procs else None,
            "db_round_trips_per_msg": round((b["round_trips"] - a["round_trips"]) / max(1, delivered), 3),
            "proxy_peak_rss_mb": round(peak_rss_mb(stack.proxy.pid), 1)}


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--app", choices=["small", "small-stream", "client-sim"], default="small")
    ap.add_argument("--store", choices=["postgres", "sqlite"], default="postgres")
    ap.add_argument("--rates", default="1250", help="offered msg/s, comma separated (default: half the 2,500 msg/s goal)")
    ap.add_argument("--tenants", type=int, default=4)
    ap.add_argument("--duration", type=float, default=60)
    ap.add_argument("--warmup", type=float, default=15)
    ap.add_argument("--period", type=float, default=0.05, help="small-stream: seconds between a tenant's answers")
    ap.add_argument("--large-rate", type=float, default=0.0, help="client-sim: LARGE_ATTACHMENT_RATE (10/50 MiB draws; 0 = 500 KiB)")
    ap.add_argument("--size", type=int, default=2000, help="small: body bytes per message")
    ap.add_argument("--concurrency", type=int, default=16)
    ap.add_argument("--profile", default="release")
    ap.add_argument("--smoke", action="store_true", help="fail unless every rate delivered mail (the test command's short run)")
    ap.add_argument("--json", default="bench-sync-latency.json")
    args = ap.parse_args()
    bins = binaries(args.profile)
    env = {"GMP_SCHEDULER_ACTIVE": "true", "GMP_SYNC_INTERVAL": "1", "GMP_SYNC_REPORT_MIN_INTERVAL": "1",
           "GMP_SYNC_CONCURRENCY": str(max(8, args.tenants))}
    results = {"app": args.app, "store": args.store, "tenants": args.tenants, "machine_cores": os.cpu_count(),
               "load_before": load_average(), "runs": []}
    results["sink_ceiling_msg_per_s"] = sink_ceiling(bins, 20000 if args.duration < 10 else 100000)
    stack, stub = Stack(args.store, bins, args.concurrency, env), None
    try:
        stack.start(account=False)
        if args.app != "client-sim":
            stub = TenantStub([f"lat-t{i}" for i in range(args.tenants)], args.size, args.app == "small-stream", args.period)
            port = free_port(); stub.serve(port)
            for t in stub.tenants:
                stack.add_tenant(t, f"http://127.0.0.1:{port}/{t}")
        for i, rate in enumerate(int(r) for r in args.rates.split(",")):
            results["runs"].append(run_rate(stack, bins, stub, rate, args, i))
    finally:
        stack.stop()
        if stub:
            stub.close()
    results["load_after"] = load_average()
    print(f"sync-path latency: app={args.app} store={args.store} tenants={args.tenants} sink ceiling={results['sink_ceiling_msg_per_s']} msg/s "
          f"load {results['load_before']} -> {results['load_after']}")
    print("latency = X-Pressure-Created-Us (stamped as the tenant builds its sync answer) -> sink acceptance")
    print_table(results["runs"], ["offered_per_s", "delivered_per_s", "backlog_slope_per_s", "p50_ms", "p95_ms", "p99_ms", "max_ms",
                                  "sync_calls_per_s", "msgs_per_sync", "sync_call_ms_mean", "proxy_hist_le_100ms_share",
                                  "proxy_cpu_s_per_1000", "postgres_cpu_s_per_1000", "proxy_peak_rss_mb"])
    write_json(args.json, results)
    if args.smoke and not all(r["delivered_per_s"] > 0 for r in results["runs"]):
        sys.exit("sync-latency smoke run: nothing was delivered")


if __name__ == "__main__":
    main()
