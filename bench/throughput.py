#!/usr/bin/env python3
"""Throughput benchmark of the mail proxy (issue 9): small messages offered at a fixed rate
(open loop) through the REST API, delivered to our verifying sink over real SMTP, on PostgreSQL
(durable settings) or SQLite. Prints a table and writes JSON.

For each offered rate it reports, over the measured window after warm-up: delivered msg/s at the
sink, the backlog slope (pending messages per second; ~0 means sustained), end-to-end latency
percentiles (creation stamp -> sink acceptance, from the sink), proxy CPU-seconds per 1,000
messages, PostgreSQL CPU per 1,000, database round trips per delivered message (the proxy's own
statement counter), proxy peak RSS, and the sink's own ceiling measured in the same run.

Usage: bench/throughput.py --store postgres --rates 1000,2500,4000 --duration 60 --warmup 15
Processes are started by this script and stopped at the end; everything listens on 127.0.0.1.
"""
import argparse, os, sys, threading, time, urllib.error

from lib import (Stack, binaries, http, load_average, peak_rss_mb, postgres_ceiling, print_postgres_ceiling, sink_ceiling,
                 write_json, writes_per_message)


def feeder(stack, rate, stop, body, counter, name="f", base=None):
    """Offers `rate` msg/s in batches every 100 ms (open loop: it never waits for delivery) to the
    proxy at `base` (default the first); the fraction of a message per tick is carried over, so the
    offered rate is exact."""
    base = base or stack.base
    seq, next_t, owed = 0, time.time(), 0.0
    while not stop.is_set():
        owed += rate / 10
        per_tick = int(owed)
        owed -= per_tick
        batch = []
        for _ in range(per_tick):
            seq += 1
            batch.append({"id": f"b{rate}-{name}-{seq}", "to": ["rcpt@sink.test"], "subject": f"bench {seq}", "body": body,
                          "headers": {"X-Pressure-Created-Us": str(int(time.time() * 1e6)), "X-Pressure-Tenant": "bench"}})
        for i in range(0, len(batch), 1000):
            part = batch[i:i + 1000]
            try:
                out = http("POST", base + "/commands/add-messages", {"tenant_id": "bench", "messages": part})
                refused = len(out.get("rejected") or []) if isinstance(out, dict) else 0
            except urllib.error.HTTPError:  # every message of the request refused
                refused = len(part)
            if refused:
                counter[1] += refused  # a harness fault (duplicate ids, limits): the run fails
        counter[0] += len(batch)
        next_t += 0.1
        time.sleep(max(0.0, next_t - time.time()))


def run_rate(stack, rate, args, idx):
    """One measured window at `rate`; `idx` keeps message ids unique when a rate repeats."""
    stop, counter = threading.Event(), [0, 0]
    body = ("x" * 76 + "\n") * (args.size // 77)
    # Several feeders so that one slow intake request never stalls the offered load.
    # Feeders take the replicas in turn, so each proxy receives its share of the intake.
    feeders = [threading.Thread(target=feeder, args=(stack, rate / args.feeders, stop, body, counter, f"r{idx}f{i}",
                                                     stack.bases[i % len(stack.bases)]), daemon=True)
               for i in range(args.feeders)]
    for t in feeders:
        t.start()
    time.sleep(args.warmup)
    stack.reset_sink()  # the sink's latency histogram then covers the measured window only
    a = stack.sample(); time.sleep(args.duration); b = stack.sample()
    stop.set()
    for t in feeders:
        t.join()
    offered = counter[0]
    dt = b["t"] - a["t"]; delivered = b["delivered"] - a["delivered"]; sent = max(1.0, b["sent"] - a["sent"])
    per_k = lambda key: round((b[key] - a[key]) / max(1, delivered) * 1000, 3)
    stack.drain()  # before the next rate
    return {"offered_per_s": rate, "fed_total": offered, "refused_by_proxy": counter[1], "delivered_per_s": round(delivered / dt, 1), "backlog_slope_per_s": round((b["pending"] - a["pending"]) / dt, 1),
            "latency_ms": b["latency"], "proxy_cpu_s_per_1000": per_k("proxy_cpu"), "postgres_cpu_s_per_1000": per_k("pg_cpu"),
            "sink_cpu_s_per_1000": per_k("sink_cpu"), "db_round_trips_per_msg": round((b["round_trips"] - a["round_trips"]) / sent, 4),
            "proxy_peak_rss_mb": round(max(peak_rss_mb(p.pid) for p in stack.proxies), 1), "postgres_per_msg": writes_per_message(a, b, delivered),
            "sent_share_by_replica": [round((y - x) / sent, 3) for x, y in zip(a["sent_by_replica"], b["sent_by_replica"])]}


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--store", choices=["postgres", "sqlite"], default="postgres")
    ap.add_argument("--rates", default="1000,2500")
    ap.add_argument("--duration", type=float, default=60)
    ap.add_argument("--warmup", type=float, default=15)
    ap.add_argument("--size", type=int, default=2000, help="body bytes per message")
    ap.add_argument("--concurrency", type=int, default=16, help="GMP_MAX_CONCURRENT_SENDS")
    ap.add_argument("--profile", default="release")
    ap.add_argument("--feeders", type=int, default=4, help="parallel REST feeders (spread over the replicas)")
    ap.add_argument("--replicas", type=int, default=1, help="proxy processes on the one PostgreSQL database")
    ap.add_argument("--smoke", action="store_true", help="fail unless every rate delivered messages (the test command's short run)")
    ap.add_argument("--json", default="bench-results.json")
    args = ap.parse_args()
    bins = binaries(args.profile)
    results = {"store": args.store, "replicas": args.replicas, "size_bytes": args.size, "machine_cores": os.cpu_count(), "load_before": load_average(), "runs": []}
    results["sink_ceiling_msg_per_s"] = sink_ceiling(bins, 20000 if args.duration < 10 else 100000)
    if args.replicas > 1 and args.store != "postgres":
        sys.exit("--replicas needs --store postgres: SQLite serves one replica")
    stack = Stack(args.store, bins, args.concurrency, replicas=args.replicas)
    try:
        stack.start()
        results["postgres_ceiling"] = {} if args.smoke else postgres_ceiling(stack)
        for idx, rate in enumerate(int(r) for r in args.rates.split(",")):
            results["runs"].append(run_rate(stack, rate, args, idx))
    finally:
        stack.stop()
    results["load_after"] = load_average()
    print(f"store={args.store} replicas={args.replicas} size={args.size}B sink ceiling={results['sink_ceiling_msg_per_s']} msg/s load {results['load_before']} -> {results['load_after']}")
    print_postgres_ceiling(results["postgres_ceiling"])
    cols = ["offered_per_s", "delivered_per_s", "backlog_slope_per_s", "proxy_cpu_s_per_1000", "postgres_cpu_s_per_1000", "db_round_trips_per_msg", "proxy_peak_rss_mb"]
    print(" | ".join(cols) + " | latency p50/p99 ms")
    for r in results["runs"]:
        lat = r["latency_ms"]
        print(" | ".join(str(r[c]) for c in cols) + f" | {lat.get('p50')}/{lat.get('p99')}")
    for r in results["runs"]:
        w = r["postgres_per_msg"]
        if w:
            print(f"PostgreSQL per delivered message at {r['offered_per_s']}/s: WAL {w['wal_bytes']} B, {w['wal_fpi']} full-page images, "
                  f"{w['commits']} commits, rows inserted {w['rows_inserted']} / updated {w['rows_updated']} "
                  f"(HOT {w['hot_update_share']}) / deleted {w['rows_deleted']}")
    write_json(args.json, results)
    refused = sum(r["refused_by_proxy"] for r in results["runs"])
    if refused:
        sys.exit(f"the proxy refused {refused} offered messages: the figures above do not measure the offered rate")
    if args.smoke and not all(r["delivered_per_s"] > 0 for r in results["runs"]):
        sys.exit("benchmark smoke run: nothing was delivered")


if __name__ == "__main__":
    main()
