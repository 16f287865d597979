#!/usr/bin/env python3
"""Memory benchmark of the mail proxy (issue 9): resident memory idle after start-up, after a
small-message load, and the peak with 4 concurrent 50 MiB attachments. Prints a table and writes
JSON.

Phases, on one proxy process (durable PostgreSQL by default):
1. idle: the proxy started, one tenant and account registered, --idle-wait seconds of nothing;
   VmRSS and VmHWM (the kernel's peak resident set).
2. small: --small messages (about 2 KB) through the REST API, delivered to the sink; VmRSS, VmHWM.
3. large: --rounds rounds of 4 messages submitted together, each with a different 50 MiB
   attachment (no MD5 marker, so each is downloaded) fetched from a client-sim over HTTP
   (`endpoint` mode) and MD5-verified by the sink; VmRSS is sampled every 20 ms while a round is in
   flight, and VmHWM read after each round. GMP_MAX_CONCURRENT_ATTACHMENTS is 4 here (default 3) so
   the 4 downloads may run at once; the proxy's memory budget (GMP_ATTACHMENT_MEMORY_BUDGET_MB)
   keeps its default. `--env KEY=VALUE` changes any proxy setting.

Usage: bench/memory.py                 (goals: idle <= 40 MB, 4 x 50 MB peak <= 256 MB)
"""
import argparse, os, sys, time

from lib import (Stack, binaries, fetch_md5, http, load_average, print_table, start_client, status_mb, storage_path,
                 write_json)


def memory(pid):
    return {"rss_mb": round(status_mb(pid, "VmRSS"), 1), "hwm_mb": round(status_mb(pid, "VmHWM"), 1)}


def wait_delivered(stack, target, pid, timeout=120):
    """Samples VmRSS every 20 ms until the sink has `target` messages; returns (peak sampled MiB, seconds)."""
    t0, peak = time.time(), 0.0
    while time.time() - t0 < timeout:
        peak = max(peak, status_mb(pid, "VmRSS"))
        if stack.sink_stats()["total"]["received"] >= target:
            return round(peak, 1), round(time.time() - t0, 2)
        if stack.failures():
            raise SystemExit(f"the proxy deferred or failed a message; see its events (logs in {stack.tmp})")
        time.sleep(0.02)
    raise SystemExit(f"the sink did not reach {target} messages in {timeout} s")


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--store", choices=["postgres", "sqlite"], default="postgres")
    ap.add_argument("--idle-wait", type=float, default=5)
    ap.add_argument("--small", type=int, default=5000, help="small messages of phase 2")
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--size", type=int, default=52_428_800, help="attachment bytes (50 MiB)")
    ap.add_argument("--env", action="append", default=[], help="KEY=VALUE proxy setting (repeatable)")
    ap.add_argument("--profile", default="release")
    ap.add_argument("--smoke", action="store_true", help="2 MiB attachments, one round, short idle (the test command's short run)")
    ap.add_argument("--json", default="bench-memory.json")
    args = ap.parse_args()
    if args.smoke:
        args.idle_wait, args.small, args.rounds, args.size = 1, 200, 1, 2_097_152
    bins = binaries(args.profile)
    stack = Stack(args.store, bins)
    stack.proxy_env = {"GMP_SPOOL_DIR": os.path.join(stack.tmp, "spool"), "GMP_MAX_CONCURRENT_ATTACHMENTS": "4", "GMP_SCHEDULER_ACTIVE": "true",
                       **dict(e.split("=", 1) for e in args.env)}
    results = {"store": args.store, "attachment_bytes": args.size, "proxy_env": stack.proxy_env, "load_before": load_average(), "phases": []}
    try:
        stack.start(account=False)
        _, url = start_client(stack, bins, "mem")
        pid = stack.proxy.pid
        time.sleep(args.idle_wait)
        results["phases"].append({"phase": "idle after start-up", **memory(pid)})
        body = ("x" * 76 + "\n") * 25
        for i in range(0, args.small, 500):
            msgs = [{"id": f"small-{j}", "to": ["rcpt@sink.test"], "subject": "small", "body": body, "headers": {"X-Pressure-Tenant": "small"}}
                    for j in range(i, min(args.small, i + 500))]
            http("POST", stack.base + "/commands/add-messages", {"tenant_id": "mem", "messages": msgs})
        peak, secs = wait_delivered(stack, args.small, pid)
        results["phases"].append({"phase": f"after {args.small} small messages", **memory(pid), "sampled_peak_mb": peak, "seconds": secs})
        delivered = args.small
        for r in range(args.rounds):
            seeds = [5000 + 4 * r + k for k in range(4)]
            md5s = [fetch_md5(url, args.size, s) for s in seeds]
            msgs = [{"id": f"big-{s}", "to": ["rcpt@sink.test"], "subject": "big", "body": "see attachment",
                     "headers": {"X-Pressure-Tenant": "big", "X-Pressure-Attachment-Md5": m},
                     "attachments": [{"filename": f"doc_{s}.bin", "storage_path": storage_path(m, args.size, s), "fetch_mode": "endpoint",
                                      "mime_type": "application/octet-stream"}]} for s, m in zip(seeds, md5s)]
            http("POST", stack.base + "/commands/add-messages", {"tenant_id": "mem", "messages": msgs})
            delivered += 4
            peak, secs = wait_delivered(stack, delivered, pid)
            results["phases"].append({"phase": f"4 x {args.size // 1048576} MiB, round {r + 1}", **memory(pid), "sampled_peak_mb": peak, "seconds": secs})
        big = stack.sink_stats()["tenants"].get("big", {})
        results["large_verified"], results["large_mismatches"] = big.get("attachments_verified"), big.get("attachment_mismatches")
    finally:
        stack.stop()
    results["load_after"] = load_average()
    results["idle_rss_mb"] = results["phases"][0]["rss_mb"]
    results["peak_hwm_mb"] = results["phases"][-1]["hwm_mb"]
    print(f"proxy memory: store={args.store} settings {stack.proxy_env}; load {results['load_before']} -> {results['load_after']}")
    print_table(results["phases"], ["phase", "rss_mb", "hwm_mb", "sampled_peak_mb", "seconds"])
    print(f"idle RSS {results['idle_rss_mb']} MiB (goal <= 40 MB); peak (VmHWM) {results['peak_hwm_mb']} MiB (goal <= 256 MB with 4 x 50 MB); "
          f"attachments verified by the sink {results['large_verified']}, mismatches {results['large_mismatches']}")
    write_json(args.json, results)
    if args.smoke and not results.get("large_verified"):
        sys.exit("memory smoke run: no attachment was delivered and verified")


if __name__ == "__main__":
    main()
