#!/usr/bin/env python3
"""Soak benchmark of the mail proxy (issue 10): small messages offered at one fixed rate (open
loop, REST intake) for a long time, delivered to the verifying sink over real SMTP, on PostgreSQL
(durable settings) or SQLite. Every interval it samples delivered msg/s, the backlog, the proxy's
resident memory and CPU, and PostgreSQL's CPU; at the end it fits a line through the samples after
the warm-up and reports the drift: memory in MiB per 10 minutes, throughput in % per 10 minutes,
backlog growth. A run is "flat" when memory grows less than 2 MiB per 10 minutes, throughput
drifts less than 2 % per 10 minutes and the backlog does not grow; the figures are printed either
way, and the exit status says whether it was flat (so a soak can gate a release by hand, never a
timed test).

Usage: bench/soak.py --store postgres --rate 800 --duration 1800 --interval 60
       bench/soak.py --smoke --profile debug      (the test command's short run: 12 s)
Processes are started by this script and stopped at the end; everything listens on 127.0.0.1.
"""
import argparse, os, sys, threading, time

from lib import (Stack, binaries, cpu_seconds, load_average, postgres_ceiling, print_postgres_ceiling, print_table,
                 sink_ceiling, status_mb, write_json)
from throughput import feeder

MEMORY_LIMIT_MIB_PER_10MIN = 2.0
THROUGHPUT_LIMIT_PCT_PER_10MIN = 2.0


def slope(points):
    """Least-squares slope of (x, y) points; 0 with fewer than two."""
    n = len(points)
    if n < 2:
        return 0.0
    mx = sum(x for x, _ in points) / n
    my = sum(y for _, y in points) / n
    var = sum((x - mx) ** 2 for x, _ in points)
    return 0.0 if var == 0 else sum((x - mx) * (y - my) for x, y in points) / var


def sample(stack):
    s = stack.sample()
    s["proxy_rss_mb"] = status_mb(stack.proxy.pid, "VmRSS")
    s["sink_rss_mb"] = status_mb(stack.sink.pid, "VmRSS")
    return s


def soak(stack, args):
    stop, counter = threading.Event(), [0]
    body = ("x" * 76 + "\n") * (args.size // 77)
    feeders = [threading.Thread(target=feeder, args=(stack, args.rate / args.feeders, stop, body, counter, f"s{i}"), daemon=True)
               for i in range(args.feeders)]
    for t in feeders:
        t.start()
    start = time.time()
    rows, prev = [], sample(stack)
    try:
        while time.time() - start < args.duration:
            time.sleep(min(args.interval, max(0.0, args.duration - (time.time() - start))))
            cur = sample(stack)
            dt = cur["t"] - prev["t"]
            delivered = cur["delivered"] - prev["delivered"]
            rows.append({
                "minute": round((cur["t"] - start) / 60, 2),
                "delivered_per_s": round(delivered / dt, 1),
                "pending": int(cur["pending"]),
                "proxy_rss_mb": round(cur["proxy_rss_mb"], 1),
                "proxy_cpu_s_per_1000": round((cur["proxy_cpu"] - prev["proxy_cpu"]) / max(1, delivered) * 1000, 3),
                "postgres_cpu_s_per_1000": round((cur["pg_cpu"] - prev["pg_cpu"]) / max(1, delivered) * 1000, 3),
                "sink_rss_mb": round(cur["sink_rss_mb"], 1),
                "load": load_average().split()[0],
            })
            print_row(rows[-1], first=len(rows) == 1)
            prev = cur
    finally:
        stop.set()
        for t in feeders:
            t.join()
    return rows, counter[0]


COLS = ["minute", "delivered_per_s", "pending", "proxy_rss_mb", "proxy_cpu_s_per_1000", "postgres_cpu_s_per_1000", "sink_rss_mb", "load"]


def print_row(row, first):
    if first:
        print("  ".join(COLS), flush=True)
    print("  ".join(str(row[c]) for c in COLS), flush=True)


def verdict(rows, warmup_s):
    """Drift per 10 minutes over the samples after the warm-up."""
    steady = [r for r in rows if r["minute"] * 60 >= warmup_s] or rows
    mem = slope([(r["minute"], r["proxy_rss_mb"]) for r in steady]) * 10
    rate = [(r["minute"], r["delivered_per_s"]) for r in steady]
    mean_rate = sum(y for _, y in rate) / max(1, len(rate))
    thr_pct = slope(rate) * 10 / mean_rate * 100 if mean_rate else 0.0
    backlog = slope([(r["minute"], r["pending"]) for r in steady]) / 60  # messages per second
    flat = (abs(mem) < MEMORY_LIMIT_MIB_PER_10MIN and abs(thr_pct) < THROUGHPUT_LIMIT_PCT_PER_10MIN
            and backlog < max(1.0, 0.01 * mean_rate) and mean_rate > 0)
    return {"samples_after_warmup": len(steady), "mean_delivered_per_s": round(mean_rate, 1),
            "proxy_rss_mb_first": steady[0]["proxy_rss_mb"] if steady else None,
            "proxy_rss_mb_last": steady[-1]["proxy_rss_mb"] if steady else None,
            "memory_mib_per_10min": round(mem, 2), "throughput_pct_per_10min": round(thr_pct, 2),
            "backlog_growth_per_s": round(backlog, 2), "flat": flat}


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--store", choices=["postgres", "sqlite"], default="postgres")
    ap.add_argument("--rate", type=int, default=800, help="offered msg/s (keep it below the sustained maximum of bench/throughput.py)")
    ap.add_argument("--duration", type=float, default=1800, help="seconds")
    ap.add_argument("--interval", type=float, default=60, help="seconds between samples")
    ap.add_argument("--warmup", type=float, default=120, help="seconds left out of the drift fit")
    ap.add_argument("--size", type=int, default=2000, help="body bytes per message")
    ap.add_argument("--concurrency", type=int, default=16, help="GMP_MAX_CONCURRENT_SENDS")
    ap.add_argument("--feeders", type=int, default=2, help="parallel REST feeders")
    ap.add_argument("--profile", default="release")
    ap.add_argument("--smoke", action="store_true", help="12 s at 100 msg/s, 3 s samples; fails only if nothing was delivered")
    ap.add_argument("--json", default="bench-soak.json")
    args = ap.parse_args()
    if args.smoke:
        args.rate, args.duration, args.interval, args.warmup = 100, 12, 3, 3
    bins = binaries(args.profile)
    stack = Stack(args.store, bins, args.concurrency)
    results = {"store": args.store, "rate": args.rate, "duration_s": args.duration, "interval_s": args.interval,
               "machine_cores": os.cpu_count(), "load_before": load_average()}
    if not args.smoke:  # the calibration of this run: the sink's own ceiling, PostgreSQL's alone
        results["sink_ceiling_msg_per_s"] = sink_ceiling(bins, 100000)
    try:
        stack.start()
        if not args.smoke:
            results["postgres_ceiling"] = postgres_ceiling(stack)
        rows, fed = soak(stack, args)
        results["proxy_cpu_s_total"] = round(cpu_seconds([stack.proxy.pid]), 1)
    finally:
        stack.stop()
    results.update(samples=rows, fed_total=fed, load_after=load_average(), summary=verdict(rows, args.warmup))
    s = results["summary"]
    print(f"\nstore={args.store} offered={args.rate} msg/s for {args.duration:.0f} s, load {results['load_before']} -> {results['load_after']}")
    if "sink_ceiling_msg_per_s" in results:
        print(f"sink ceiling={results['sink_ceiling_msg_per_s']} msg/s")
    print_postgres_ceiling(results.get("postgres_ceiling"))
    print_table([s], list(s.keys()))
    write_json(args.json, results)
    if args.smoke:
        if s["mean_delivered_per_s"] <= 0:
            sys.exit("soak smoke run: nothing was delivered")
    elif not s["flat"]:
        sys.exit("soak: not flat (see the drift figures above)")


if __name__ == "__main__":
    main()
