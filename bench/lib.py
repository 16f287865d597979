"""Shared helpers of the benchmarks under bench/ (issue 9): free ports, a small JSON HTTP client,
per-process CPU and memory from /proc, Prometheus text sums, the release (or debug) binaries, the
stack (a durable PostgreSQL or SQLite, the proxy and the verifying sink on loopback) and the
sink's own ceiling measured with `client-sim blast`, and PostgreSQL's own rate for the queue's work
(pgbench on the same cluster).

Each benchmark script imports this module; nothing here prints figures.
"""
import hashlib, json, os, re, shutil, signal, socket, subprocess, tempfile, threading, time, urllib.request

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
KEY = "MDEyMzQ1Njc4OTAxMjM0NTY3ODkwMTIzNDU2Nzg5MDE="
TOKEN = "bench-token"


def free_port():
    s = socket.socket(); s.bind(("127.0.0.1", 0)); p = s.getsockname()[1]; s.close(); return p


def http(method, url, body=None, token=TOKEN, timeout=30):
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


def status_mb(pid, field):
    """A memory line of /proc/<pid>/status (VmRSS, VmHWM, ...) in MiB."""
    for line in open(f"/proc/{pid}/status"):
        if line.startswith(field + ":"):
            return int(line.split()[1]) / 1024
    return 0.0


def peak_rss_mb(pid):
    return status_mb(pid, "VmHWM")


def postgres_cpu_seconds(data_dir):
    """CPU seconds of one PostgreSQL cluster: its postmaster (with the reaped children it has
    waited for, so backends that exited still count) and its live children. Other clusters on the
    machine are not counted."""
    try:
        postmaster = int(open(os.path.join(data_dir, "postmaster.pid")).readline())
    except (OSError, ValueError):
        return 0.0
    tick, total = os.sysconf("SC_CLK_TCK"), 0.0
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            fields = open(f"/proc/{entry}/stat").read().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(entry) == postmaster:
            total += sum(int(f) for f in fields[11:15]) / tick
        elif int(fields[1]) == postmaster:
            total += (int(fields[11]) + int(fields[12])) / tick
    return total


# What PostgreSQL wrote, read from its statistics views: WAL bytes and full-page images (a page's
# first change after a checkpoint logs the whole 8 KiB page), commits, and rows written, of which
# updates kept on their page without index entries (HOT).
WRITES_SQL = """SELECT w.wal_bytes, w.wal_fpi, d.xact_commit, d.tup_inserted, d.tup_updated, d.tup_deleted,
  (SELECT COALESCE(SUM(n_tup_hot_upd), 0) FROM pg_stat_user_tables)
  FROM pg_stat_wal w, pg_stat_database d WHERE d.datname = current_database()"""
WRITES_KEYS = ("wal_bytes", "wal_fpi", "commits", "rows_inserted", "rows_updated", "rows_deleted", "hot_updates")


def postgres_writes(db_url):
    """The counters of WRITES_SQL for the database at `db_url`; {} when psql fails. WAL counts the
    whole cluster (autovacuum included). A busy backend flushes its counts about once a second,
    an idle one within 10 s: over a minute's window the lag at both ends about cancels."""
    out = subprocess.run(["psql", db_url, "-XAtF,", "-c", WRITES_SQL],
                         capture_output=True, text=True)
    line = out.stdout.strip().splitlines()[-1:] if out.returncode == 0 else []
    try:
        return dict(zip(WRITES_KEYS, (float(v) for v in line[0].split(","))))
    except (IndexError, ValueError):
        return {}


def print_statements(db_url, top=12):
    """With PG_EXTRA_SETTINGS="-c shared_preload_libraries=pg_stat_statements": the statements
    PostgreSQL spent the most time on over the whole run, with calls and rows."""
    if "pg_stat_statements" not in os.environ.get("PG_EXTRA_SETTINGS", ""):
        return
    sql = ("SELECT round(total_exec_time)::bigint, round(total_plan_time)::bigint, calls, rows, "
           "left(regexp_replace(query, '\\s+', ' ', 'g'), 110) FROM pg_stat_statements "
           "WHERE dbid = (SELECT oid FROM pg_database WHERE datname = current_database()) "
           f"ORDER BY total_exec_time + total_plan_time DESC LIMIT {top}")
    out = subprocess.run(["psql", db_url, "-XAtF|", "-c", sql], capture_output=True, text=True)
    print("pg_stat_statements, whole run: exec ms | plan ms | calls | rows | statement")
    print(out.stdout.rstrip() or out.stderr.rstrip())


# The calibration of PostgreSQL alone: the queue's own work with no proxy in the way. A table shaped
# like `messages` (text keys, a 2 KB payload, the pending index, fillfactor 50); each pgbench client
# inserts 100 rows, claims up to 100 pending rows with `FOR UPDATE SKIP LOCKED` and marks its claimed
# rows sent, each statement its own durable transaction, as the proxy's are.
CALIBRATION_SCHEMA = """DROP TABLE IF EXISTS calibration;
CREATE TABLE calibration (pk TEXT PRIMARY KEY, id TEXT NOT NULL, tenant_id TEXT NOT NULL, priority BIGINT NOT NULL,
  payload TEXT NOT NULL, queued_us BIGINT NOT NULL, claimed_by TEXT, claimed_until BIGINT, smtp_ts BIGINT,
  UNIQUE (tenant_id, id)) WITH (fillfactor = 50);
CREATE INDEX calibration_pending ON calibration (priority, queued_us, pk) WHERE smtp_ts IS NULL;"""
CALIBRATION_SCRIPT = """INSERT INTO calibration (pk, id, tenant_id, priority, payload, queued_us)
  SELECT gen_random_uuid()::text, gen_random_uuid()::text, 'c' || :client_id, 2, repeat('x', 2000),
         (extract(epoch FROM clock_timestamp()) * 1e6)::bigint FROM generate_series(1, 100);
UPDATE calibration m SET claimed_by = 'c' || :client_id, claimed_until = extract(epoch FROM now())::bigint + 60
  FROM (SELECT pk FROM calibration WHERE smtp_ts IS NULL AND claimed_by IS NULL
        ORDER BY priority, queued_us, pk LIMIT 100 FOR UPDATE SKIP LOCKED) c WHERE m.pk = c.pk;
UPDATE calibration SET smtp_ts = extract(epoch FROM now())::bigint WHERE smtp_ts IS NULL AND claimed_by = 'c' || :client_id;
"""


def postgres_ceiling(stack, secs=10, clients=4):
    """PostgreSQL's own rate for the queue's work on the stack's cluster (a table of its own, dropped
    after): messages per second (inserted, claimed and marked sent) and its CPU-seconds per 1,000.
    Returns {} on SQLite, and when pgbench is missing or fails."""
    if not stack.pg_port or not shutil.which("pgbench"):
        return {}
    script = os.path.join(stack.tmp, "calibration.sql")
    with open(script, "w") as f:
        f.write(CALIBRATION_SCRIPT)
    subprocess.run(["psql", stack.pg_db, "-Xq", "-v", "ON_ERROR_STOP=1", "-c", CALIBRATION_SCHEMA], check=True, capture_output=True)
    data = os.path.join(stack.tmp, "pg", "data")
    cpu = postgres_cpu_seconds(data)
    out = subprocess.run(["pgbench", "-n", "-c", str(clients), "-j", str(min(clients, 2)), "-T", str(secs), "-f", script, stack.pg_db],
                         capture_output=True, text=True)
    cpu = postgres_cpu_seconds(data) - cpu
    subprocess.run(["psql", stack.pg_db, "-Xqc", "DROP TABLE calibration"], capture_output=True)
    tps = re.search(r"tps = ([0-9.]+)", out.stdout)
    if out.returncode != 0 or not tps:
        return {}
    per_s = float(tps.group(1)) * 100
    return {"msg_per_s": round(per_s), "cpu_s_per_1000": round(cpu / max(1.0, per_s * secs) * 1000, 3)}


def print_postgres_ceiling(c):
    if c:
        print(f"PostgreSQL alone (pgbench, the queue's insert, claim and outcome): {c['msg_per_s']} msg/s, "
              f"{c['cpu_s_per_1000']} CPU-s per 1,000")


def writes_per_message(a, b, messages):
    """Per-message differences of two `postgres_writes` readings (empty when either failed)."""
    if not a.get("pg_writes") or not b.get("pg_writes") or messages <= 0:
        return {}
    d = {k: b["pg_writes"][k] - a["pg_writes"][k] for k in WRITES_KEYS}
    out = {k: round(d[k] / messages, 3) for k in ("wal_fpi", "commits", "rows_inserted", "rows_updated", "rows_deleted")}
    out["wal_bytes"] = round(d["wal_bytes"] / messages)
    out["hot_update_share"] = round(d["hot_updates"] / d["rows_updated"], 3) if d["rows_updated"] else None
    return out


def metric_sum(text, name, label=None):
    """Sum of the samples of `name` (optionally only those whose labels contain `label`)."""
    total = 0.0
    for line in text.splitlines():
        if line.startswith(name + "{") or line.startswith(name + " "):
            if label is None or label in line.split(" ", 1)[0]:
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


def load_average():
    return " ".join(open("/proc/loadavg").read().split()[:3])


class Stack:
    """The proxy, the sink and (for postgres) a durable PostgreSQL cluster, on loopback.

    `proxy_env` overrides the proxy's settings (e.g. GMP_SCHEDULER_ACTIVE=true for the sync path);
    `concurrency` sets the send, per-account and pool limits together (with larger claims and a
    50 ms idle poll); None leaves every one of them at the proxy's default."""

    def __init__(self, store, bins, concurrency=16, proxy_env=None, replicas=1):
        self.store, self.bins, self.concurrency, self.proxy_env = store, bins, concurrency, proxy_env or {}
        self.replicas = replicas  # proxy processes on the one database (PostgreSQL only beyond 1)
        self.procs, self.tmp = [], tempfile.mkdtemp(prefix="mail-bench.")
        os.chmod(self.tmp, 0o755)
        self.pg_port, self.pg_db = None, None

    def start(self, account=True):
        env = dict(os.environ)
        for key in ("GMP_SPOOL_DIR", "GMP_CACHE_DISK_DIR"):  # created here too, so that the folders exist before the proxy starts
            if self.proxy_env.get(key):
                os.makedirs(self.proxy_env[key], exist_ok=True)
        if self.store == "postgres":
            out = subprocess.run(["bash", "-c", f"source {ROOT}/scripts/lib/postgres.sh && PG_DURABLE=1 pg_up {self.tmp}/pg >&2 && echo $GMP_TEST_PG_URL"],
                                 capture_output=True, text=True, check=True)
            admin = out.stdout.strip(); self.pg_port = int(admin.rsplit(":", 1)[1].split("/")[0])
            subprocess.run(["psql", admin, "-qc", "CREATE DATABASE bench"], check=True)
            db = admin.rsplit("/", 1)[0] + "/bench"
            self.pg_db = db
            if "pg_stat_statements" in os.environ.get("PG_EXTRA_SETTINGS", ""):
                subprocess.run(["psql", db, "-qc", "CREATE EXTENSION pg_stat_statements"], check=True)
        else:
            db = os.path.join(self.tmp, "mail.db")
        self.smtp, self.sink_http = free_port(), free_port()
        self.sink = self.spawn([self.bins["client-sim"], "sink", "--smtp-listen", f"127.0.0.1:{self.smtp}", "--http-listen", f"127.0.0.1:{self.sink_http}", "--allow-reset"], env)
        penv = dict(env, GMP_DB_PATH=db, GMP_HOST="127.0.0.1", GMP_API_TOKEN=TOKEN,
                    MAIL_PROXY_ENCRYPTION_KEY=KEY, GMP_LOG_LEVEL="WARNING", GMP_SCHEDULER_ACTIVE="false",
                    GMP_ATTACHMENT_ALLOWED_HOSTS="127.0.0.1")  # the clients run on loopback, refused unless listed
        if self.concurrency is not None:  # None: the proxy's own defaults, as a user's first run has them
            c = str(self.concurrency)
            penv.update(GMP_MAX_CONCURRENT_SENDS=c, GMP_MAX_SENDS_PER_ACCOUNT=c,
                        GMP_BATCH_SIZE_PER_ACCOUNT="500", GMP_CLAIM_BATCH_SIZE="500", GMP_POOL_SIZE=c,
                        GMP_SEND_LOOP_INTERVAL="0.05")
        penv.update(self.proxy_env)
        self.proxies, self.bases = [], []
        for i in range(self.replicas):
            port = free_port()
            # The first replica creates the schema; the others start once it answers.
            self.proxies.append(self.spawn([self.bins["mailproxy"]], dict(penv, GMP_PORT=str(port), HOSTNAME=f"bench-{i}")))
            self.bases.append(f"http://127.0.0.1:{port}")
            wait_http(self.bases[-1] + "/health")
        self.proxy, self.base = self.proxies[0], self.bases[0]
        self.sink_url = f"http://127.0.0.1:{self.sink_http}"
        wait_http(self.sink_url + "/health")
        if account:
            self.add_tenant("bench")

    def add_tenant(self, tenant, client_base_url=None):
        """A tenant with one SMTP account to the sink; with `client_base_url` the proxy syncs with
        that application and fetches `endpoint` attachments from it."""
        body = {"id": tenant, "name": tenant}
        if client_base_url:
            body.update(client_base_url=client_base_url, client_sync_path="/sync", client_attachment_path="/attachments")
        http("POST", self.base + "/tenant", body)
        http("POST", self.base + "/account", {"id": f"smtp-{tenant}", "tenant_id": tenant, "smtp_host": "127.0.0.1", "smtp_port": self.smtp,
                                                "sender_email": f"{tenant}@bench.test", "use_tls": False})

    def spawn(self, cmd, env=None):
        p = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=open(os.path.join(self.tmp, os.path.basename(cmd[0]) + ".log"), "a"))
        self.procs.append(p); return p

    def stop(self):
        for p in self.procs:
            if p.poll() is None:
                p.send_signal(signal.SIGTERM)
        for p in self.procs:
            try:
                p.wait(15)
            except subprocess.TimeoutExpired:
                p.kill()
        if self.pg_port:
            print_statements(self.pg_db)
            subprocess.run(["bash", "-c", f"source {ROOT}/scripts/lib/postgres.sh && pg_down {self.tmp}/pg"])
        if os.environ.get("BENCH_KEEP") == "1":
            print(f"kept {self.tmp} (logs, database)")
        else:
            shutil.rmtree(self.tmp, ignore_errors=True)

    def sink_stats(self):
        return http("GET", self.sink_url + "/stats")

    def reset_sink(self):
        http("POST", self.sink_url + "/reset", {})

    def metrics(self):
        return http("GET", self.base + "/metrics")

    def sample(self):
        sink = self.sink_stats()
        metrics = self.metrics()
        # Counters add up over the replicas; the pending gauge is the database's count, the same
        # on every replica.
        every = [metrics] + [http("GET", b + "/metrics") for b in self.bases[1:]]
        pg = postgres_cpu_seconds(os.path.join(self.tmp, "pg", "data")) if self.pg_port else 0.0
        return {"t": time.time(), "delivered": sink["total"]["received"], "latency": sink["total"]["latency_ms"], "sink": sink,
                "pending": metric_sum(metrics, "gmp_pending_messages"), "sent": sum(metric_sum(m, "gmp_sent_total") for m in every),
                "sent_by_replica": [metric_sum(m, "gmp_sent_total") for m in every],
                "round_trips": sum(metric_sum(m, "gmp_db_round_trips_total") for m in every),
                "proxy_cpu": cpu_seconds([p.pid for p in self.proxies]),
                "sink_cpu": cpu_seconds([self.sink.pid]), "pg_cpu": pg, "metrics": metrics,
                "pg_writes": postgres_writes(self.pg_db) if self.pg_port else {}}

    def failures(self):
        """Deferred plus failed sends so far (a benchmark that waits for delivery stops on these)."""
        m = self.metrics()
        return metric_sum(m, "gmp_deferred_total") + metric_sum(m, "gmp_errors_total")

    def drain(self, secs=120):
        """Waits until the proxy has nothing pending (or `secs` passed)."""
        end = time.time() + secs
        while time.time() < end and metric_sum(self.metrics(), "gmp_pending_messages") > 0:
            time.sleep(0.5)


def blast(bins, args, timeout=300):
    """A fresh sink alone, driven by `client-sim blast <args>`: returns (msg/s, MB/s, sink CPU s)."""
    smtp, web = free_port(), free_port()
    p = subprocess.Popen([bins["client-sim"], "sink", "--smtp-listen", f"127.0.0.1:{smtp}", "--http-listen", f"127.0.0.1:{web}"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        wait_http(f"http://127.0.0.1:{web}/health")
        out = subprocess.run([bins["client-sim"], "blast", "--smtp", f"127.0.0.1:{smtp}", *args], capture_output=True, text=True, timeout=timeout).stdout
        cpu = cpu_seconds([p.pid])
        m, mb = re.search(r"msg_per_s=([0-9.]+)", out), re.search(r"MB_per_s=([0-9.]+)", out)
        if not m:
            return out.strip(), None, cpu
        return float(m.group(1)), float(mb.group(1)) if mb else None, cpu
    finally:
        p.terminate(); p.wait()


def sink_ceiling(bins, messages=50000):
    """The sink alone, blasted with small messages by client-sim's own SMTP client: the harness's headroom."""
    return blast(bins, ["--connections", "8", "--messages", str(messages), "--size", "2000"])[0]


def percentile(values, q):
    if not values:
        return None
    s = sorted(values)
    return s[min(len(s) - 1, int(q * len(s)))]


def print_table(rows, cols):
    """A plain table: one header line, one line per row, columns padded to their widest cell."""
    cells = [[str(c) for c in cols]] + [[str(r.get(c, "")) for c in cols] for r in rows]
    widths = [max(len(line[i]) for line in cells) for i in range(len(cols))]
    for line in cells:
        print("  ".join(v.rjust(w) for v, w in zip(line, widths)))


def write_json(path, results):
    with open(path, "w") as f:
        json.dump(results, f, indent=2)
    print(f"wrote {path}")


def start_client(stack, bins, tenant):
    """A `client-sim serve` that generates nothing (the attachment server of `tenant`), registered
    as the tenant's application so that `endpoint` attachments are fetched from it."""
    port = free_port()
    p = stack.spawn([bins["client-sim"], "serve", "--port", str(port), "--tenant-id", tenant, "--client-id", tenant,
                     "--msg-rate-per-sync", "0", "--dnd-probability", "0"])
    url = f"http://127.0.0.1:{port}"
    wait_http(url + "/health")
    stack.add_tenant(tenant, url)
    return p, url


def storage_path(md5, size, seed):
    """The storage path client-sim serves: content derived from (seed, size), `md5` echoed back."""
    return f"hash={md5}&size={size}&seed={seed}"


def fetch_md5(client_url, size, seed):
    """MD5 of the content client-sim serves for (seed, size), read from the client itself."""
    req = urllib.request.Request(client_url + "/attachments", data=json.dumps({"storage_path": storage_path("0" * 32, size, seed)}).encode(),
                                 method="POST", headers={"Content-Type": "application/json"})
    h = hashlib.md5()
    with urllib.request.urlopen(req, timeout=60) as r:
        while chunk := r.read(1 << 20):
            h.update(chunk)
    return h.hexdigest()


def client_ceiling(client_url, size, streams=4, secs=3.0):
    """MB/s that `streams` parallel readers (this Python process, reading and discarding) get from
    the client's /attachments: a lower bound of the client's own ceiling."""
    total, stop = [0], time.time() + secs

    def reader(seed):
        while time.time() < stop:
            req = urllib.request.Request(client_url + "/attachments", data=json.dumps({"storage_path": storage_path("0" * 32, size, seed)}).encode(),
                                         method="POST", headers={"Content-Type": "application/json"})
            with urllib.request.urlopen(req, timeout=60) as r:
                while chunk := r.read(1 << 20):
                    total[0] += len(chunk)
    t0 = time.time()
    threads = [threading.Thread(target=reader, args=(900 + i,)) for i in range(streams)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return round(total[0] / 1e6 / (time.time() - t0), 1)
