#!/usr/bin/env python3
"""The attendee export and the order search at size, against a real `taquilla serve`.

Usage: scripts/attendees-export-bench.py BIN [TICKETS [PER_ORDER]]   (default 1,000,000 and 100)

Starts BIN on a temporary data dir, sells TICKETS free tickets (PER_ORDER per order, 1–100; free
orders are paid at checkout), then prints, with the server's RSS read from /proc:
  - the export as CSV and as JSON: bytes, rows, seconds, RSS before and the peak during;
  - the cost of one page of GET /v1/admin/orders that scans its whole budget (a buyer filter
    matching nothing), and of one found by ticket code.
Prints figures; asserts only that the export has one row per ticket. Standard library only.
"""
import base64, hashlib, hmac, http.client, json, os, re, subprocess, sys, tempfile, threading, time

ADMIN = "bench-admin-token-0123456789"
SECRET = b"bench-buyer-secret-0123456789"


def b64(b):
    return base64.urlsafe_b64encode(b).rstrip(b"=").decode()


def buyer_token(buyer, exp):
    payload = f"v1.{b64(buyer.encode())}.{exp}"
    sig = hmac.new(SECRET, payload.encode(), hashlib.sha256).digest()
    return f"{payload}.{b64(sig)}"


def rss_kib(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


class Client:
    def __init__(self, host, port):
        self.c = http.client.HTTPConnection(host, port, timeout=600)

    def call(self, method, path, body=None, token=ADMIN, headers=None):
        h = {"Authorization": f"Bearer {token}"}
        if body is not None:
            h["Content-Type"] = "application/json"
            body = json.dumps(body)
        h.update(headers or {})
        self.c.request(method, path, body=body, headers=h)
        r = self.c.getresponse()
        data = r.read()
        if r.status >= 300:
            raise SystemExit(f"{method} {path}: {r.status} {data[:300]!r}")
        return json.loads(data) if data and r.getheader("content-type", "").startswith("application/json") else data


def export(host, port, pid, query, accept):
    base = rss_kib(pid)
    peak = [base]
    done = threading.Event()

    def sample():
        while not done.is_set():
            peak[0] = max(peak[0], rss_kib(pid))
            time.sleep(0.005)

    t = threading.Thread(target=sample)
    t.start()
    c = http.client.HTTPConnection(host, port, timeout=600)
    start = time.monotonic()
    c.request("GET", query, headers={"Authorization": f"Bearer {ADMIN}", "Accept": accept})
    r = c.getresponse()
    total, newlines = 0, 0
    while True:
        chunk = r.read(1 << 16)
        if not chunk:
            break
        total += len(chunk)
        newlines += chunk.count(b"\n")
    secs = time.monotonic() - start
    done.set()
    t.join()
    return total, newlines, secs, base, peak[0]


def main():
    binary = sys.argv[1]
    tickets = int(sys.argv[2]) if len(sys.argv) > 2 else 1_000_000
    per_order = int(sys.argv[3]) if len(sys.argv) > 3 else 100
    orders = tickets // per_order
    d = tempfile.mkdtemp()
    proc = subprocess.Popen(
        [binary, "serve", "--listen", "127.0.0.1:0", "--data-dir", f"{d}/data", "--admin-token", ADMIN,
         "--buyer-secret", SECRET.decode(), "--rate-limit-address", "1000000", "--rate-limit-address-burst", "1000000"],
        stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    try:
        url = None
        for line in proc.stdout:
            m = re.search(r"http://([0-9.]+):([0-9]+)", line)
            if m:
                url = (m.group(1), int(m.group(2)))
                break
        host, port = url
        c = Client(host, port)
        for _ in range(600):
            try:
                c.call("GET", "/readyz")
                break
            except Exception:
                time.sleep(0.1)
                c = Client(host, port)
        ev = c.call("POST", "/v1/admin/events", {"name": "Bench", "currency": "EUR"})["id"]
        c.call("POST", f"/v1/admin/events/{ev}/ticket-types", {"name": "Free", "price_minor": 0})
        c.call("POST", f"/v1/admin/events/{ev}/quotas", {"name": "All", "capacity": tickets, "ticket_type_ids": [0]})
        c.call("POST", f"/v1/admin/events/{ev}/open")
        exp = int(time.time()) + 86_400
        start = time.monotonic()
        code = None
        for i in range(orders):
            token = buyer_token(f"buyer-{i}", exp)
            hold = c.call("POST", f"/v1/events/{ev}/holds", {"items": [{"ticket_type_id": 0, "quantity": per_order}]}, token)
            order = c.call("POST", f"/v1/holds/{hold['id']}/checkout", None, token)
            code = code or order["tickets"][0]["code"]
        print(f"sold {orders * per_order} tickets in {orders} orders in {time.monotonic() - start:.1f} s")
        pid = proc.pid
        for name, query, accept in [("csv", f"/v1/admin/events/{ev}/attendees", "text/csv"),
                                    ("json", f"/v1/admin/events/{ev}/attendees", "application/json")]:
            total, lines, secs, base, peak = export(host, port, pid, query, accept)
            print(f"export {name}: {total / 1e6:.1f} MB, {lines} lines, {secs:.2f} s, "
                  f"server RSS before {base / 1024:.0f} MiB, peak during {peak / 1024:.0f} MiB "
                  f"(+{(peak - base) / 1024:.1f} MiB)")
            if name == "csv" and lines != orders * per_order + 1:
                raise SystemExit(f"expected {orders * per_order + 1} lines, got {lines}")
        for label, q in [("a full-budget scan (buyer filter matching nothing)", "buyer_id=nobody&limit=50"),
                         ("by ticket code", f"ticket_code={code}")]:
            n = 20
            start = time.monotonic()
            for _ in range(n):
                c.call("GET", f"/v1/admin/orders?{q}")
            print(f"orders page, {label}: {(time.monotonic() - start) / n * 1000:.2f} ms per request")
    finally:
        proc.terminate()
        proc.wait()


if __name__ == "__main__":
    main()
