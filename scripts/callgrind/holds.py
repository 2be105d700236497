# Used by scripts/callgrind-holds.sh: N holds over one keep-alive connection, tokens round robin; prints the statuses seen.
import http.client, json, sys, collections
host, port, event, n, tokens_file = sys.argv[1], int(sys.argv[2]), sys.argv[3], int(sys.argv[4]), sys.argv[5]
tokens = [t.strip() for t in open(tokens_file) if t.strip()]
conn = http.client.HTTPConnection(host, port)
body = json.dumps({"items": [{"ticket_type_id": 0, "quantity": 1}]})
seen = collections.Counter()
for i in range(n):
    conn.request("POST", f"/v1/events/{event}/holds", body,
                 {"Authorization": "Bearer " + tokens[i % len(tokens)], "Content-Type": "application/json"})
    r = conn.getresponse(); b = r.read(); seen[r.status] += 1
    if r.status >= 400 and seen[r.status] == 1: print(b[:300])
print(dict(seen))
