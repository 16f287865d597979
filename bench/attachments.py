#!/usr/bin/env python3
"""Attachment benchmark of the mail proxy (issue 9): the seed's attachment mix fetched by the proxy
from a client-sim over HTTP while small messages keep flowing. Prints a table and writes JSON.

Two open-loop feeds through the REST API, on durable PostgreSQL:
- small messages (about 2 KB, tenant `bench`) at --small-rate msg/s;
- attachment messages (tenant `att`, `fetch_mode: endpoint`, fetched from a `client-sim serve`
  registered as the tenant's application) at --attachment-mbps MB/s of payload, sizes drawn from
  the seed's mix (10 KB 40%, 500 KB 30%, 2 MB 15%, 10 MB 10%, 50 MB 5%). With probability
  --hit-rate (seed: 0.3) the filename carries an `{MD5:...}` marker of one of --pool items per size
  already sent, so the proxy's MD5 cache can serve it (the first use of each item is a miss); the
  rest carry no marker and are always downloaded. Every attachment is MD5-verified by the sink.

Reported over the measured window: attachment payload MB/s delivered (messages counted by the sink
per size class times their size), wire MB/s, small msg/s delivered, backlog slope, latency
(creation -> sink acceptance) per class, the proxy's cache hits, CPU cores used by each process
(proxy, PostgreSQL, sink, client, this harness) to show the limiting part, proxy peak RSS; and the
ceilings measured in the same run: the sink alone (client-sim blast, 10 MiB attachments, 4
connections) and the client's /attachments read by 4 Python streams.

Usage: bench/attachments.py --attachment-mbps 100 --small-rate 1000 --duration 60 --warmup 15
       bench/attachments.py --env GMP_MAX_CONCURRENT_ATTACHMENTS=8 ...   (proxy settings to try)
"""
import argparse, os, random, sys, threading, time

from lib import (Stack, binaries, blast, client_ceiling, cpu_seconds, fetch_md5, http, load_average, metric_sum,
                 peak_rss_mb, print_table, start_client, storage_path, write_json)
from throughput import feeder

MIX = [("10k", 10_240, 0.40), ("500k", 512_000, 0.30), ("2m", 2_097_152, 0.15), ("10m", 10_485_760, 0.10), ("50m", 52_428_800, 0.05)]


def attachment_feeder(stack, mbps, stop, pool, hit_rate, fed, rng):
    """Offers about `mbps` MB/s of attachment payload, a draw every 100 ms (open loop)."""
    mean_bytes = sum(size * p for _, size, p in MIX) / sum(p for _, _, p in MIX)
    per_tick, credit, seq, next_t = mbps * 1e6 / mean_bytes / 10, 0.0, 0, time.time()
    labels, weights = [m[0] for m in MIX], [m[2] for m in MIX]
    sizes = {label: size for label, size, _ in MIX}
    while not stop.is_set():
        credit += per_tick
        batch = []
        while credit >= 1:
            credit -= 1; seq += 1
            label = rng.choices(labels, weights)[0]
            seed, md5 = rng.choice(pool[label])
            keyed = rng.random() < hit_rate
            name = f"doc_{{MD5:{md5}}}.bin" if keyed else f"doc_{seq}.bin"
            batch.append({"id": f"att-{seq}", "to": ["rcpt@sink.test"], "subject": f"attachment {seq}", "body": "see attachment",
                          "headers": {"X-Pressure-Created-Us": str(int(time.time() * 1e6)), "X-Pressure-Tenant": f"att-{label}",
                                      "X-Pressure-Attachment-Md5": md5},
                          "attachments": [{"filename": name, "storage_path": storage_path(md5, sizes[label], seed),
                                           "fetch_mode": "endpoint", "mime_type": "application/octet-stream"}]})
            fed[label] = fed.get(label, 0) + 1
        if batch:
            http("POST", stack.base + "/commands/add-messages", {"tenant_id": "att", "messages": batch})
        next_t += 0.1
        time.sleep(max(0.0, next_t - time.time()))


def cache_counts(metrics):
    """Keyed lookups that hit (either tier) and that missed both (a memory miss falls through to disk)."""
    return {"hit": metric_sum(metrics, "gmp_attachment_cache_requests_total", 'result="hit"'),
            "miss": metric_sum(metrics, "gmp_attachment_cache_requests_total", 'tier="disk",result="miss"')}


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--store", choices=["postgres", "sqlite"], default="postgres")
    ap.add_argument("--attachment-mbps", type=float, default=100, help="offered attachment payload, MB/s")
    ap.add_argument("--small-rate", type=int, default=1000, help="offered small messages per second")
    ap.add_argument("--hit-rate", type=float, default=0.3, help="share of attachments with a reusable MD5 marker")
    ap.add_argument("--pool", type=int, default=4, help="distinct contents per size class")
    ap.add_argument("--duration", type=float, default=60)
    ap.add_argument("--warmup", type=float, default=15)
    ap.add_argument("--concurrency", type=int, default=16)
    ap.add_argument("--env", action="append", default=[], help="KEY=VALUE proxy setting (repeatable)")
    ap.add_argument("--profile", default="release")
    ap.add_argument("--smoke", action="store_true", help="small sizes only; fail unless both feeds delivered (the test command's short run)")
    ap.add_argument("--json", default="bench-attachments.json")
    args = ap.parse_args()
    if args.smoke:  # seconds, not minutes: no 10/50 MB draws
        MIX[:] = MIX[:3]
    bins = binaries(args.profile)
    stack = Stack(args.store, bins, args.concurrency, None)
    stack.proxy_env = {"GMP_CACHE_DISK_DIR": os.path.join(stack.tmp, "cache"), "GMP_SPOOL_DIR": os.path.join(stack.tmp, "spool"),
                       **dict(e.split("=", 1) for e in args.env)}
    results = {"store": args.store, "machine_cores": os.cpu_count(), "mix": MIX, "hit_rate": args.hit_rate,
               "offered_attachment_mbps": args.attachment_mbps, "offered_small_per_s": args.small_rate,
               "proxy_env": stack.proxy_env, "load_before": load_average()}
    big = MIX[-1][1] if args.smoke else 10_485_760
    sink_msgs, sink_mbps, _ = blast(bins, ["--connections", "4", "--messages", "8" if args.smoke else "40", "--attachment-bytes", str(big)])
    results["sink_ceiling"] = {"attachment_bytes": big, "connections": 4, "msg_per_s": sink_msgs, "wire_mb_per_s": sink_mbps}
    stop, fed, counter = threading.Event(), {}, [0, 0]
    try:
        stack.start()
        client, client_url = start_client(stack, bins, "att")
        results["client_ceiling_mb_per_s"] = client_ceiling(client_url, big, secs=1 if args.smoke else 3)
        rng = random.Random(7)
        pool = {label: [(s, fetch_md5(client_url, size, s)) for s in range(i * 100, i * 100 + args.pool)] for i, (label, size, _) in enumerate(MIX)}
        body = ("x" * 76 + "\n") * 25
        threads = [threading.Thread(target=attachment_feeder, args=(stack, args.attachment_mbps, stop, pool, args.hit_rate, fed, rng), daemon=True)]
        if args.small_rate:
            threads += [threading.Thread(target=feeder, args=(stack, args.small_rate // 2, stop, body, counter, f"s{i}"), daemon=True) for i in range(2)]
        for t in threads:
            t.start()
        time.sleep(args.warmup)
        stack.reset_sink()
        pids = {"proxy": [stack.proxy.pid], "sink": [stack.sink.pid], "client": [client.pid], "harness": [os.getpid()]}
        cpu_a = {k: cpu_seconds(v) for k, v in pids.items()}
        a = stack.sample(); ca = cache_counts(a["metrics"])
        time.sleep(args.duration)
        b = stack.sample(); cb = cache_counts(b["metrics"])
        cpu_b = {k: cpu_seconds(v) for k, v in pids.items()}
        stop.set()
        for t in threads:
            t.join()
        dt = b["t"] - a["t"]
        tenants = b["sink"]["tenants"]
        rows, payload, wire = [], 0.0, 0.0
        for label, size, share in MIX:
            t = tenants.get(f"att-{label}", {})
            n = t.get("received", 0)
            payload += n * size; wire += t.get("bytes", 0)
            lat = t.get("latency_ms", {})
            rows.append({"class": label, "mix_share": share, "delivered": n, "payload_mb": round(n * size / 1e6, 1),
                         "verified": t.get("attachments_verified", 0), "mismatches": t.get("attachment_mismatches", 0),
                         "p50_ms": lat.get("p50"), "p99_ms": lat.get("p99"), "max_ms": lat.get("max")})
        small = tenants.get("bench", {})
        hits, misses = cb["hit"] - ca["hit"], cb["miss"] - ca["miss"]
        results.update({
            "window_s": round(dt, 1), "fed": fed,
            "attachment_payload_mb_per_s": round(payload / 1e6 / dt, 1), "attachment_wire_mb_per_s": round(wire / 1e6 / dt, 1),
            "small_delivered_per_s": round(small.get("received", 0) / dt, 1), "small_latency_ms": small.get("latency_ms") or {},
            "backlog_slope_per_s": round((b["pending"] - a["pending"]) / dt, 2), "pending_at_end": b["pending"],
            "proxy_cache_hits": hits, "proxy_cache_misses": misses, "proxy_cache_hit_share_of_attachments": round(hits / max(1, sum(x["delivered"] for x in rows)), 3),
            "cores_used": {**{k: round((cpu_b[k] - cpu_a[k]) / dt, 2) for k in pids}, "postgres": round((b["pg_cpu"] - a["pg_cpu"]) / dt, 2)},
            "proxy_peak_rss_mb": round(peak_rss_mb(stack.proxy.pid), 1), "sink_peak_rss_mb": round(peak_rss_mb(stack.sink.pid), 1),
            "classes": rows, "load_after": load_average()})
    finally:
        stop.set()
        stack.stop()
    r = results
    print(f"attachments: offered {args.attachment_mbps} MB/s payload + {args.small_rate} small msg/s, store={args.store}, load {r['load_before']} -> {r['load_after']}")
    print_table(r["classes"], ["class", "mix_share", "delivered", "payload_mb", "verified", "mismatches", "p50_ms", "p99_ms", "max_ms"])
    print(f"attachment payload delivered: {r['attachment_payload_mb_per_s']} MB/s (wire {r['attachment_wire_mb_per_s']} MB/s); "
          f"small delivered: {r['small_delivered_per_s']} msg/s (p50/p99 {r['small_latency_ms'].get('p50')}/{r['small_latency_ms'].get('p99')} ms); "
          f"backlog slope {r['backlog_slope_per_s']}/s, pending at end {r['pending_at_end']:.0f}")
    print(f"proxy cache: {r['proxy_cache_hits']:.0f} hits, {r['proxy_cache_misses']:.0f} misses (hits are {r['proxy_cache_hit_share_of_attachments']} of attachments delivered); "
          f"cores used: {r['cores_used']}; proxy peak RSS {r['proxy_peak_rss_mb']} MiB")
    print(f"ceilings: sink alone {r['sink_ceiling']['wire_mb_per_s']} MB/s wire ({big} B attachments, 4 connections); "
          f"client /attachments {r['client_ceiling_mb_per_s']} MB/s (4 Python readers)")
    write_json(args.json, results)
    if counter[1]:
        sys.exit(f"the proxy refused {counter[1]} small messages: the figures above do not measure the offered rate")
    if args.smoke and not (r["small_delivered_per_s"] > 0 and r["attachment_payload_mb_per_s"] > 0):
        sys.exit("attachment smoke run: a feed delivered nothing")


if __name__ == "__main__":
    main()
