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
import argparse, json, os, re, signal, socket, subprocess, sys, tempfile, threading, time, urllib.request

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
KEY = "MDEyMzQ1Njc4OTAxMjM0NTY3ODkwMTIzNDU2Nzg5MDE="


def free_port():
    s = socket.socket(); s.bind(("127.0.0.1", 0)); p = s.getsockname()[1]; s.close(); return p


def http(method, url, body=None, token="bench-token", timeout=30):
    data = None if body is None else json.dumps(body).encode()
    req = urllib.request.Request(url, data=data, method=method, headers={"X-API-Token": token, "Content-Type": "application/json"})
    with urllib.request.urlopen(req, timeout=timeout) as r:
        raw = r.read()
    try:
        return json.loads(raw)
    except ValueError:
        return raw.decode()


def wait_http(url, secs=30):
    end = time.time() + secs
    while time.time() < end:
        try:
            urllib.request.urlopen(url, timeout=2).read(); return
        except Exception:
            time.sleep(0.1)
    raise SystemExit(f"{url} did not come up")


def cpu_seconds(pids):
    tick = os.sysconf("SC_CLK_TCK"); total = 0.0
    for pid in pids:
        try:
            fields = open(f"/proc/{pid}/stat").read().rsplit(")", 1)[1].split()
            total += (int(fields[11]) + int(fields[12])) / tick
        except OSError:
            pass
    return total


def peak_rss_mb(pid):
    for line in open(f"/proc/{pid}/status"):
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return 0.0


def postgres_pids(port):
    out = subprocess.run(["pgrep", "-f", f"postgres.*-p {port}|postgres:"], capture_output=True, text=True).stdout.split()
    return [int(p) for p in out]


def metric_sum(text, name):
    total = 0.0
    for line in text.splitlines():
        if line.startswith(name + "{") or line.startswith(name + " "):
            total += float(line.rsplit(" ", 1)[1])
    return total


def binaries(profile):
    d = os.path.join(os.environ.get("CARGO_TARGET_DIR", os.path.join(ROOT, "target")), profile)
    bins = {b: os.path.join(d, b) for b in ("mailproxy", "client-sim")}
    missing = [b for b, p in bins.items() if not os.path.exists(p)]
    if missing:
        flag = ["--release"] if profile == "release" else []
        subprocess.run(["cargo", "build", *flag, "-p", "mailproxy", "-p", "client-sim"], cwd=ROOT, check=True)
    return bins


class Stack:
    """The proxy, the sink and (for postgres) a durable PostgreSQL cluster, on loopback."""

    def __init__(self, args, bins):
        self.args, self.bins, self.procs, self.tmp = args, bins, [], tempfile.mkdtemp(prefix="mail-bench.")
        os.chmod(self.tmp, 0o755)
        self.pg_port = None

    def start(self):
        env = dict(os.environ)
        if self.args.store == "postgres":
            out = subprocess.run(["bash", "-c", f"source {ROOT}/scripts/lib/postgres.sh && PG_DURABLE=1 pg_up {self.tmp}/pg >&2 && echo $GMP_TEST_PG_URL"],
                                 capture_output=True, text=True, check=True)
            admin = out.stdout.strip(); self.pg_port = int(admin.rsplit(":", 1)[1].split("/")[0])
            subprocess.run(["psql", admin, "-qc", "CREATE DATABASE bench"], check=True)
            db = admin.rsplit("/", 1)[0] + "/bench"
        else:
            db = os.path.join(self.tmp, "mail.db")
        self.smtp, self.sink_http, self.proxy_port = free_port(), free_port(), free_port()
        self.sink = self.spawn([self.bins["client-sim"], "sink", "--smtp-listen", f"127.0.0.1:{self.smtp}", "--http-listen", f"127.0.0.1:{self.sink_http}"], env)
        penv = dict(env, GMP_DB_PATH=db, GMP_HOST="127.0.0.1", GMP_PORT=str(self.proxy_port), GMP_API_TOKEN="bench-token",
                    MAIL_PROXY_ENCRYPTION_KEY=KEY, GMP_LOG_LEVEL="WARNING", GMP_SCHEDULER_ACTIVE="false",
                    GMP_MAX_CONCURRENT_SENDS=str(self.args.concurrency), GMP_MAX_SENDS_PER_ACCOUNT=str(self.args.concurrency),
                    GMP_BATCH_SIZE_PER_ACCOUNT="500", GMP_CLAIM_BATCH_SIZE="500", GMP_POOL_SIZE=str(self.args.concurrency),
                    GMP_SEND_LOOP_INTERVAL="0.05")
        self.proxy = self.spawn([self.bins["mailproxy"]], penv)
        self.base = f"http://127.0.0.1:{self.proxy_port}"
        wait_http(self.base + "/health"); wait_http(f"http://127.0.0.1:{self.sink_http}/health")
        http("POST", self.base + "/tenant", {"id": "bench", "name": "Bench"})
        http("POST", self.base + "/account", {"id": "smtp", "tenant_id": "bench", "smtp_host": "127.0.0.1", "smtp_port": self.smtp,
                                                "sender_email": "bench@bench.test", "use_tls": False})

    def spawn(self, cmd, env):
        p = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=open(os.path.join(self.tmp, os.path.basename(cmd[0]) + ".log"), "a"))
        self.procs.append(p); return p

    def stop(self):
        for p in self.procs:
            p.send_signal(signal.SIGTERM)
        for p in self.procs:
            try:
                p.wait(15)
            except subprocess.TimeoutExpired:
                p.kill()
        if self.pg_port:
            subprocess.run(["bash", "-c", f"source {ROOT}/scripts/lib/postgres.sh && pg_down {self.tmp}/pg"])

    def sample(self):
        sink = http("GET", f"http://127.0.0.1:{self.sink_http}/stats")
        metrics = http("GET", self.base + "/metrics")
        pg = cpu_seconds(postgres_pids(self.pg_port)) if self.pg_port else 0.0
        return {"t": time.time(), "delivered": sink["total"]["received"], "latency": sink["total"]["latency_ms"],
                "pending": metric_sum(metrics, "gmp_pending_messages"), "sent": metric_sum(metrics, "gmp_sent_total"),
                "round_trips": metric_sum(metrics, "gmp_db_round_trips_total"), "proxy_cpu": cpu_seconds([self.proxy.pid]),
                "sink_cpu": cpu_seconds([self.sink.pid]), "pg_cpu": pg}


def feeder(stack, rate, stop, body, counter, name="f"):
    """Offers `rate` msg/s in batches every 100 ms (open loop: it never waits for delivery)."""
    per_tick, seq, next_t = max(1, rate // 10), 0, time.time()
    while not stop.is_set():
        batch = []
        for _ in range(per_tick):
            seq += 1
            batch.append({"id": f"b{rate}-{name}-{seq}", "to": ["rcpt@sink.test"], "subject": f"bench {seq}", "body": body,
                          "headers": {"X-Pressure-Created-Us": str(int(time.time() * 1e6)), "X-Pressure-Tenant": "bench"}})
        for i in range(0, len(batch), 1000):
            http("POST", stack.base + "/commands/add-messages", {"tenant_id": "bench", "messages": batch[i:i + 1000]})
        counter[0] += len(batch)
        next_t += 0.1
        time.sleep(max(0.0, next_t - time.time()))


def run_rate(stack, rate, args):
    http("POST", f"http://127.0.0.1:{stack.sink_http}/reset", {})
    stop, counter = threading.Event(), [0]
    body = ("x" * 76 + "\n") * (args.size // 77)
    # Several feeders so that one slow intake request never stalls the offered load.
    feeders = [threading.Thread(target=feeder, args=(stack, rate // args.feeders, stop, body, counter, f"f{i}"), daemon=True)
               for i in range(args.feeders)]
    for t in feeders:
        t.start()
    time.sleep(args.warmup)
    a = stack.sample(); time.sleep(args.duration); b = stack.sample()
    stop.set()
    for t in feeders:
        t.join()
    offered = counter[0]
    dt = b["t"] - a["t"]; delivered = b["delivered"] - a["delivered"]; sent = max(1.0, b["sent"] - a["sent"])
    per_k = lambda key: round((b[key] - a[key]) / max(1, delivered) * 1000, 3)
    # Let the backlog drain before the next rate.
    end = time.time() + 120
    while time.time() < end and stack.sample()["pending"] > 0:
        time.sleep(0.5)
    return {"offered_per_s": rate, "fed_total": offered, "delivered_per_s": round(delivered / dt, 1), "backlog_slope_per_s": round((b["pending"] - a["pending"]) / dt, 1),
            "latency_ms": b["latency"], "proxy_cpu_s_per_1000": per_k("proxy_cpu"), "postgres_cpu_s_per_1000": per_k("pg_cpu"),
            "sink_cpu_s_per_1000": per_k("sink_cpu"), "db_round_trips_per_msg": round((b["round_trips"] - a["round_trips"]) / sent, 4),
            "proxy_peak_rss_mb": round(peak_rss_mb(stack.proxy.pid), 1)}


def sink_ceiling(bins, messages=50000):
    """The sink alone, blasted by client-sim's own SMTP client: the harness's headroom."""
    smtp, web = free_port(), free_port()
    p = subprocess.Popen([bins["client-sim"], "sink", "--smtp-listen", f"127.0.0.1:{smtp}", "--http-listen", f"127.0.0.1:{web}"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        wait_http(f"http://127.0.0.1:{web}/health")
        out = subprocess.run([bins["client-sim"], "blast", "--smtp", f"127.0.0.1:{smtp}", "--connections", "8", "--messages", str(messages), "--size", "2000"],
                             capture_output=True, text=True, timeout=300).stdout
        m = re.search(r"msg_per_s=([0-9.]+)", out)
        return float(m.group(1)) if m else out.strip()
    finally:
        p.terminate(); p.wait()


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--store", choices=["postgres", "sqlite"], default="postgres")
    ap.add_argument("--rates", default="1000,2500")
    ap.add_argument("--duration", type=float, default=60)
    ap.add_argument("--warmup", type=float, default=15)
    ap.add_argument("--size", type=int, default=2000, help="body bytes per message")
    ap.add_argument("--concurrency", type=int, default=16, help="GMP_MAX_CONCURRENT_SENDS")
    ap.add_argument("--profile", default="release")
    ap.add_argument("--feeders", type=int, default=4, help="parallel REST feeders")
    ap.add_argument("--smoke", action="store_true", help="fail unless every rate delivered messages (the test command's short run)")
    ap.add_argument("--json", default="bench-results.json")
    args = ap.parse_args()
    bins = binaries(args.profile)
    results = {"store": args.store, "size_bytes": args.size, "machine_cores": os.cpu_count(), "runs": []}
    results["sink_ceiling_msg_per_s"] = sink_ceiling(bins, 20000 if args.duration < 10 else 100000)
    stack = Stack(args, bins)
    try:
        stack.start()
        for rate in [int(r) for r in args.rates.split(",")]:
            results["runs"].append(run_rate(stack, rate, args))
    finally:
        stack.stop()
    print(f"store={args.store} size={args.size}B sink ceiling={results['sink_ceiling_msg_per_s']} msg/s")
    cols = ["offered_per_s", "delivered_per_s", "backlog_slope_per_s", "proxy_cpu_s_per_1000", "postgres_cpu_s_per_1000", "db_round_trips_per_msg", "proxy_peak_rss_mb"]
    print(" | ".join(cols) + " | latency p50/p99 ms")
    for r in results["runs"]:
        lat = r["latency_ms"]
        print(" | ".join(str(r[c]) for c in cols) + f" | {lat.get('p50')}/{lat.get('p99')}")
    with open(args.json, "w") as f:
        json.dump(results, f, indent=2)
    print(f"wrote {args.json}")
    if args.smoke and not all(r["delivered_per_s"] > 0 for r in results["runs"]):
        sys.exit("benchmark smoke run: nothing was delivered")


if __name__ == "__main__":
    main()
