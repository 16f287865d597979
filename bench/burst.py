#!/usr/bin/env python3
"""Burst benchmark of the mail proxy (issue 18): what a user's first run sees. One tenant with one
SMTP account submits --messages small messages at once (requests of 100, several in parallel)
through the REST API; the proxy runs with its own default settings (or --concurrency N, which
sets the send, per-account and pool limits together, as the other benchmarks do). Reported: how
long the intake took, delivered msg/s from the first submission to the last acceptance at the
sink, latency percentiles (creation stamp -> sink acceptance), and the sink's own ceiling measured
in the same run.

Usage: bench/burst.py --store postgres --messages 30000                 (the proxy's defaults)
       bench/burst.py --store postgres --messages 30000 --concurrency 16
       bench/burst.py --env GMP_MAX_SENDS_PER_ACCOUNT=5 ...             (one setting changed)
       bench/burst.py --smoke --store sqlite --profile debug            (the test command's short run)
Processes are started by this script and stopped at the end; everything listens on 127.0.0.1.
"""
import argparse, os, sys, threading, time

from lib import Stack, binaries, http, load_average, sink_ceiling, write_json


def submit(stack, ids, body, refused):
    for i in range(0, len(ids), 100):
        batch = [{"id": m, "to": ["rcpt@sink.test"], "subject": f"burst {m}", "body": body,
                  "headers": {"X-Pressure-Created-Us": str(int(time.time() * 1e6)), "X-Pressure-Tenant": "bench"}}
                 for m in ids[i:i + 100]]
        out = http("POST", stack.base + "/commands/add-messages", {"tenant_id": "bench", "messages": batch})
        refused[0] += len(out.get("rejected") or []) if isinstance(out, dict) else 0


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--store", choices=["postgres", "sqlite"], default="postgres")
    ap.add_argument("--messages", type=int, default=30000)
    ap.add_argument("--size", type=int, default=2000, help="body bytes per message")
    ap.add_argument("--concurrency", type=int, default=None, help="send, per-account and pool limits (default: the proxy's own)")
    ap.add_argument("--env", action="append", default=[], help="KEY=VALUE proxy setting (repeatable)")
    ap.add_argument("--submitters", type=int, default=4, help="parallel REST clients")
    ap.add_argument("--timeout", type=float, default=600, help="seconds to wait for delivery")
    ap.add_argument("--profile", default="release")
    ap.add_argument("--smoke", action="store_true", help="500 messages and a short sink calibration (the test command's run)")
    ap.add_argument("--json", default="bench-burst.json")
    args = ap.parse_args()
    if args.smoke:
        args.messages, args.timeout = 500, 120
    bins = binaries(args.profile)
    results = {"store": args.store, "messages": args.messages, "concurrency": args.concurrency or "proxy defaults",
               "env": args.env, "machine_cores": os.cpu_count(), "load_before": load_average(),
               "sink_ceiling_msg_per_s": sink_ceiling(bins, 5000 if args.smoke else 100000)}
    stack = Stack(args.store, bins, args.concurrency, dict(e.split("=", 1) for e in args.env))
    body = ("x" * 76 + "\n") * (args.size // 77)
    try:
        stack.start()
        ids = [f"burst-{i}" for i in range(args.messages)]
        refused, share = [0], -(-len(ids) // args.submitters)
        threads = [threading.Thread(target=submit, args=(stack, ids[k * share:(k + 1) * share], body, refused))
                   for k in range(args.submitters)]
        t0 = time.time()
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        intake_s = time.time() - t0
        if refused[0]:
            sys.exit(f"the proxy refused {refused[0]} messages")
        while stack.sink_stats()["total"]["received"] < args.messages and time.time() - t0 < args.timeout:
            if stack.failures():
                sys.exit("the proxy deferred or failed sends: the figures would not measure delivery")
            time.sleep(0.05)
        total_s = time.time() - t0
        sink = stack.sink_stats()["total"]
    finally:
        stack.stop()
    results.update(intake_s=round(intake_s, 2), total_s=round(total_s, 2), delivered=sink["received"],
                   delivered_per_s=round(sink["received"] / total_s, 1), latency_ms=sink["latency_ms"], load_after=load_average())
    lat = results["latency_ms"]
    print(f"burst of {args.messages} on {args.store}, settings: {results['concurrency']} {' '.join(args.env)}; "
          f"load {results['load_before']} -> {results['load_after']}; sink ceiling {results['sink_ceiling_msg_per_s']} msg/s")
    print(f"intake {results['intake_s']} s; delivered {sink['received']} in {results['total_s']} s: {results['delivered_per_s']} msg/s; "
          f"latency p50/p99/max {lat.get('p50')}/{lat.get('p99')}/{lat.get('max')} ms")
    write_json(args.json, results)
    if sink["received"] < args.messages:
        sys.exit(f"only {sink['received']} of {args.messages} delivered within {args.timeout:.0f} s")


if __name__ == "__main__":
    main()
