#!/usr/bin/env bash
# Runs the log shipper's configuration (deploy/syslog-ng/syslog-ng.conf) in a real syslog-ng on
# a container directory laid out as Docker's json-file driver writes it, with Loki's push
# endpoint played by a local HTTP server that records what it is sent (Loki itself does not
# install on these machines). Passes when every line written arrives as one entry of a valid
# push request: the stream's labels, a nanosecond timestamp, and the line's text unchanged.
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
tmp=$(mktemp -d /tmp/hosting-logship.XXXXXX)
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  rm -rf "$tmp"
}
trap cleanup EXIT

id=$(printf 'a%.0s' $(seq 1 12))$(printf 'b%.0s' $(seq 1 52))
mkdir -p "$tmp/containers/$id"
log="$tmp/containers/$id/$id-json.log"
: > "$log"

port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
python3 - "$port" "$tmp/received" <<'PY' &
import http.server, sys
port, out = int(sys.argv[1]), sys.argv[2]
class H(http.server.BaseHTTPRequestHandler):
    def do_POST(self):
        body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
        with open(out, "ab") as f:
            f.write(self.path.encode() + b"\t" + self.headers.get("Content-Type", "").encode()
                    + b"\t" + body + b"\n")
        self.send_response(204)
        self.end_headers()
    def log_message(self, *a):
        pass
http.server.HTTPServer(("127.0.0.1", port), H).serve_forever()
PY
pids+=($!)

DOCKER_CONTAINERS_DIR=$tmp/containers LOKI_URL=http://127.0.0.1:$port HOST_NAME=node-1 \
  syslog-ng -F -f "$root/deploy/syslog-ng/syslog-ng.conf" --no-caps \
  --persist-file="$tmp/persist" --pidfile="$tmp/pid" --control="$tmp/ctl" \
  >"$tmp/syslog-ng.log" 2>&1 &
pids+=($!)
sleep 2
# Docker's own format: the text JSON-escaped (quotes, backslashes, a tab, UTF-8), then stream
# and time; one stderr line.
cat >> "$log" <<'EOF'
{"log":"{\"level\":\"info\",\"msg\":\"hostd serving\",\"port\":\"50051\"}\n","stream":"stdout","time":"2026-12-06T13:00:00.123456789Z"}
{"log":"quote \" backslash \\ tab \t caf\u00e9 ü\n","stream":"stderr","time":"2026-12-06T13:00:01.000000001Z"}
EOF

for _ in $(seq 1 100); do
  [ -s "$tmp/received" ] && [ "$(grep -o '"values"' "$tmp/received" | wc -l)" -ge 2 ] && break
  sleep 0.2
done
[ -s "$tmp/received" ] || { echo "nothing reached the push endpoint; syslog-ng said:"; cat "$tmp/syslog-ng.log"; exit 1; }

python3 - "$tmp/received" "$log" "${id:0:12}" <<'PY'
import json, sys
received, log, cid = sys.argv[1], sys.argv[2], sys.argv[3]
want = [json.loads(l) for l in open(log, encoding="utf-8")]
got = []
for line in open(received, encoding="utf-8"):
    path, ctype, body = line.rstrip("\n").split("\t", 2)
    assert path == "/loki/api/v1/push", path
    assert ctype == "application/json", ctype
    push = json.loads(body)
    for s in push["streams"]:
        labels = s["stream"]
        assert labels["job"] == "docker" and labels["host"] == "node-1", labels
        assert labels["container_id"] == cid, labels
        for ts, text in s["values"]:
            assert isinstance(ts, str) and ts.isdigit() and len(ts) == 19, ts
            got.append((labels["stream"], text))
expected = [(w["stream"], w["log"]) for w in want]
assert got == expected, f"got {got!r}\nwant {expected!r}"
print(f"log shipper: {len(got)} lines pushed as Loki entries, labels and text intact")
PY
