# Used by scripts/callgrind-holds.sh with SUBSCRIBERS=N: N live-push subscribers of the sale
# (GET /v1/events/{id}/stream), read until killed; prints how many answered 200 and, at the end,
# the events received.
import selectors, signal, socket, sys
host, port, event, n = sys.argv[1], int(sys.argv[2]), sys.argv[3], int(sys.argv[4])
sel = selectors.DefaultSelector()
ok, events = 0, 0
for _ in range(n):
    s = socket.create_connection((host, port))
    s.sendall(f"GET /v1/events/{event}/stream HTTP/1.1\r\nHost: {host}\r\n\r\n".encode())
    head = s.recv(4096)
    ok += head.startswith(b"HTTP/1.1 200")
    events += head.count(b"event: availability")
    sel.register(s, selectors.EVENT_READ)
print(f"subscribed: {ok}/{n}", flush=True)
def done(*_):
    print(f"availability events received: {events}", flush=True)
    sys.exit(0)
signal.signal(signal.SIGTERM, done)
while True:
    for key, _ in sel.select():
        data = key.fileobj.recv(65536)
        if not data:
            sel.unregister(key.fileobj)
        events += data.count(b"event: availability")
