"""Prepares a fresh server for scripts/contract.sh: an open sale that takes any hold the
OpenAPI schema allows (no per-buyer limit, no per-order maximum, capacity to spare), and a buyer
token. Waits for the server to be ready. Prints "<event id> <buyer token>"."""

import json
import sys
import time
import urllib.error
import urllib.request

base, admin = sys.argv[1], sys.argv[2]


def call(method, path, body=None):
    data = None if body is None else json.dumps(body).encode()
    req = urllib.request.Request(base + path, data=data, method=method)
    req.add_header("Authorization", f"Bearer {admin}")
    if data is not None:
        req.add_header("Content-Type", "application/json")
    with urllib.request.urlopen(req, timeout=10) as r:
        return json.load(r)


deadline = time.monotonic() + 60
while True:
    try:
        call("GET", "/readyz")
        break
    except (urllib.error.URLError, ConnectionError):
        if time.monotonic() > deadline:
            sys.exit("the server did not become ready")
        time.sleep(0.1)

sale = call("POST", "/v1/admin/events", {"name": "Contract", "currency": "EUR"})
event = sale["id"]
for name, price in [("General", 3500), ("Free", 0)]:
    call("POST", f"/v1/admin/events/{event}/ticket-types", {"name": name, "price_minor": price})
call("POST", f"/v1/admin/events/{event}/quotas", {"name": "Venue", "capacity": 100_000_000, "ticket_type_ids": [0, 1]})
call("POST", f"/v1/admin/events/{event}/open")
token = call("POST", "/v1/admin/buyer-tokens", {"buyer_id": "contract-buyer"})["token"]
print(event, token)
