"""A minimal tenant application for the sync-latency benchmark: answers the proxy's
`POST /<tenant>/sync` with small messages only (client-sim `serve` gives 60% of its messages an
attachment, and has no switch to turn them off), at a fixed rate per tenant.

Each answer carries the messages due since the tenant's previous answer (a token bucket, so the
offered rate does not depend on how often the proxy calls), each stamped `X-Pressure-Created-Us`
when the answer is built, i.e. after any wait: the sink's latency then starts at the sync response.

Two cadences:
- `stream=False`: the proxy's own cadence (GMP_SYNC_INTERVAL / GMP_SYNC_REPORT_MIN_INTERVAL, whole
  seconds), so each tenant hands over about one second of mail per call, in one burst.
- `stream=True`: every answer says `queued: 1`, so the proxy calls again at once; the stub holds each
  call until `period` seconds after its previous answer, so mail arrives in small batches every
  `period` seconds (a busy tenant with a steady stream).
"""
import json, socket, threading, time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


class TenantStub:
    def __init__(self, tenants, size=2000, stream=False, period=0.05):
        self.tenants, self.stream, self.period = list(tenants), stream, period
        self.body = ("x" * 76 + "\n") * max(1, size // 77)
        self.rate = 0.0  # msg/s per tenant
        self.lock = threading.Lock()
        self.state = {t: {"bucket": 0.0, "last": time.time(), "answered": 0.0, "seq": 0} for t in self.tenants}
        self.generated, self.calls, self.reports = 0, 0, 0

    def set_rate(self, total_per_s):
        with self.lock:
            now = time.time()
            for s in self.state.values():
                s["bucket"], s["last"] = 0.0, now
            self.rate = total_per_s / len(self.tenants)

    def answer(self, tenant, reports):
        s = self.state[tenant]
        if self.stream:
            wait = s["answered"] + self.period - time.time()
            if wait > 0:
                time.sleep(wait)
        with self.lock:
            now = time.time()
            s["bucket"] = min(s["bucket"] + self.rate * (now - s["last"]), 5000.0)
            s["last"] = now
            n = int(s["bucket"]); s["bucket"] -= n
            first = s["seq"]; s["seq"] += n
            self.generated += n; self.calls += 1; self.reports += reports
        created = str(int(time.time() * 1e6))
        msgs = [{"id": f"{tenant}-{first + i}", "to": ["rcpt@sink.test"], "subject": f"latency {first + i}", "body": self.body,
                 "headers": {"X-Pressure-Created-Us": created, "X-Pressure-Tenant": tenant}} for i in range(n)]
        s["answered"] = time.time()
        out = {"ok": True, "processed": reports, "messages": msgs}
        if self.stream and self.rate > 0:
            out["queued"] = 1
        return out

    def serve(self, port):
        stub = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def setup(self):
                super().setup()
                # Headers and body are two writes: without TCP_NODELAY the body waits for the
                # proxy's delayed ACK of the headers (about 40 ms) and the stub, not the proxy,
                # would add that to every sync.
                self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

            def log_message(self, *a):
                pass

            def do_GET(self):
                self.reply(200, {"ok": True})

            def do_POST(self):
                raw = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                parts = self.path.strip("/").split("/")
                if len(parts) != 2 or parts[1] != "sync" or parts[0] not in stub.state:
                    return self.reply(404, {"ok": False, "error": f"unknown path {self.path}"})
                try:
                    body = json.loads(raw or b"{}")
                except ValueError:
                    return self.reply(400, {"ok": False, "error": "invalid JSON"})
                reports = len(body.get("delivery_report") or body.get("reports") or [])
                self.reply(200, stub.answer(parts[0], reports))

            def reply(self, code, obj):
                data = json.dumps(obj).encode()
                self.send_response(code)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self._headers_buffer.append(b"\r\n" + data)  # one write: headers and body
                self.flush_headers()

        self.server = ThreadingHTTPServer(("127.0.0.1", port), Handler)
        self.server.daemon_threads = True
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self):
        self.server.shutdown()
