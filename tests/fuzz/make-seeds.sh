#!/usr/bin/env bash
# Writes the fuzz targets' seed inputs into corpus/<target>/seed-*: valid inputs of every kind
# each parser takes, so fuzzing starts from deep paths. Rerun after a format changes; crash
# inputs (crash-*) found by scripts/fuzz.sh are kept beside the seeds as regression tests.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
corpus=$here/corpus
mkdir -p "$corpus"/{spec_fuzz,appsvc_http_fuzz,prom_text_fuzz,docker_events_fuzz,haproxy_reply_fuzz,agent_stream_fuzz}

# A protobuf message of `type` from its text form (protoc --encode).
encode() { protoc --encode="hosting.v1.$1" -I "$root/proto" "$2"; }

# --- spec_fuzz: 0x00 + spec file text (YAML or JSON), 0x01 + ServiceSpec bytes.
for f in "$root"/deploy/examples/*.yaml; do
  { printf '\x00'; cat "$f"; } > "$corpus/spec_fuzz/seed-$(basename "$f" .yaml)"
done
{ printf '\x00'; printf '%s' '{"name":"api","image":"hosting/appsvc:v2","replicas":2,"env":{"A":"1"},"ports":[{"container_port":3000,"published_port":8080}],"release":{"canary":{"steps":[{"weight_percent":10,"pause":"30s"}]}}}'; } \
  > "$corpus/spec_fuzz/seed-json"
{ printf '\x01'; encode ServiceSpec hosting/v1/service.proto <<'PB'
name: "web" image: "hosting/sample:v1" replicas: 3 env { key: "A" value: "b" }
ports { name: "http" container_port: 8080 published_port: 80 }
health { http_path: "/health" interval { seconds: 2 } timeout { seconds: 1 } }
resources { cpu_limit: 0.5 memory_limit_bytes: 67108864 }
stop_grace_period { seconds: 5 } secrets { name: "db_password" target: "db" }
PB
} > "$corpus/spec_fuzz/seed-proto"

# --- appsvc_http_fuzz: requests as a client sends them.
req() { printf '%b' "$2" > "$corpus/appsvc_http_fuzz/seed-$1"; }
req health 'GET /health HTTP/1.1\r\nHost: a\r\n\r\n'
req metrics 'GET /metrics HTTP/1.1\r\nHost: a\r\n\r\n'
req create-then-read 'POST /api/users HTTP/1.1\r\nHost: a\r\nContent-Type: application/json\r\nContent-Length: 40\r\n\r\n{"name":"Ann","email":"ann@example.com"}GET /api/users/1 HTTP/1.1\r\nHost: a\r\n\r\nGET /api/users?limit=5 HTTP/1.1\r\nHost: a\r\n\r\n'
req update 'POST /api/users HTTP/1.1\r\nHost: a\r\nContent-Type: application/json\r\nContent-Length: 28\r\n\r\n{"name":"B","email":"b@b.io"}PUT /api/users/1 HTTP/1.1\r\nHost: a\r\nContent-Type: application/json\r\nContent-Length: 14\r\n\r\n{"name":"Bob"}DELETE /api/users/1 HTTP/1.1\r\nHost: a\r\n\r\n'
req orders 'POST /api/users HTTP/1.1\r\nHost: a\r\nContent-Type: application/json\r\nContent-Length: 28\r\n\r\n{"name":"C","email":"c@c.io"}POST /api/users/1/orders HTTP/1.1\r\nHost: a\r\nContent-Type: application/json\r\nContent-Length: 38\r\n\r\n{"total_amount":12.5,"status":"paid"}\nGET /api/users/1/orders HTTP/1.1\r\nHost: a\r\n\r\nGET /api/orders/1 HTTP/1.1\r\nHost: a\r\n\r\n'
req chunked 'POST /api/users HTTP/1.1\r\nHost: a\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n5\r\n{"nam\r\n0\r\n\r\n'
req no-host 'GET /api/users/1 HTTP/1.1\r\n\r\n'
req http10 'GET /ready HTTP/1.0\r\n\r\n'
req big-id 'GET /api/users/99999999999999999999 HTTP/1.1\r\nHost: a\r\n\r\n'
req nul-name 'POST /api/users HTTP/1.1\r\nHost: a\r\nContent-Type: application/json\r\nContent-Length: 38\r\n\r\n{"name":"x\\u0000y","email":"x@y.io"}  '

# --- prom_text_fuzz: a /metrics body like appsvc's.
cat > "$corpus/prom_text_fuzz/seed-appsvc" <<'PROM'
# HELP http_requests_total HTTP requests.
# TYPE http_requests_total counter
http_requests_total{method="GET",route="/api/users/:id",status="200"} 90
http_requests_total{method="POST",route="/api/users",status_code="500"} 3
# TYPE http_request_duration_seconds histogram
http_request_duration_seconds_bucket{method="GET",route="/",le="0.001"} 80
http_request_duration_seconds_bucket{method="GET",route="/",le="0.01"} 95
http_request_duration_seconds_bucket{method="GET",route="/",le="+Inf"} 97
http_request_duration_seconds_sum{method="GET",route="/"} 0.2
http_request_duration_seconds_count{method="GET",route="/"} 97
http_requests_in_flight 4
odd_value{a="x\"y\\z\n"} NaN 1700000000000
PROM

# --- docker_events_fuzz: a chunking seed byte, then events lines or an API answer.
{ printf '\x07'; cat <<'EV'
{"Type":"service","Action":"update","Actor":{"ID":"abc","Attributes":{"name":"web","updatestate.new":"updating"}},"scope":"swarm","time":1700000000,"timeNano":1700000000000000000}
{"Type":"container","Action":"health_status: healthy","Actor":{"ID":"def","Attributes":{"com.docker.swarm.task.id":"t1"}},"timeNano":1}
{"Type":"node","Action":"update","Actor":{"ID":"n1","Attributes":{"state.new":"down"}}}
EV
} > "$corpus/docker_events_fuzz/seed-events"
{ printf '\x03'; printf '%s' '[{"ID":"s1","Version":{"Index":12},"Spec":{"Name":"web-r1","Labels":{"hosting.service":"web"},"Mode":{"Replicated":{"Replicas":3}}},"ServiceStatus":{"RunningTasks":3,"DesiredTasks":3},"UpdateStatus":{"State":"completed"}},{"ID":"t1","ServiceID":"s1","NodeID":"n1","Slot":1,"DesiredState":"running","Status":{"State":"running","ContainerStatus":{"ContainerID":"c1"}},"NetworksAttachments":[{"Addresses":["10.0.1.5/24"]}]}]'; } \
  > "$corpus/docker_events_fuzz/seed-list"
{ printf '\x01'; printf '%s' '{"Name":"m1","ServerVersion":"20.10.24","NCPU":2,"MemTotal":25000000000,"Swarm":{"NodeID":"n1","LocalNodeState":"active","ControlAvailable":true},"Labels":["zone=a","b"],"Description":{"Hostname":"m1","Resources":{"NanoCPUs":2000000000,"MemoryBytes":1},"Engine":{"EngineVersion":"20.10"}},"Status":{"State":"ready","Addr":"127.0.0.1"}}'; } \
  > "$corpus/docker_events_fuzz/seed-object"

# --- haproxy_reply_fuzz: backend, "show servers state", "--", "show stat" CSV.
cat > "$corpus/haproxy_reply_fuzz/seed-release" <<'HA'
web
1
# be_id be_name srv_id srv_name srv_addr srv_op_state srv_admin_state srv_uweight srv_iweight srv_time_since_last_change srv_check_status srv_check_result srv_check_health srv_check_state srv_agent_state bk_f_forced_id srv_f_forced_id srv_fqdn srv_port srvrecord srv_use_ssl srv_check_port srv_check_addr srv_agent_addr srv_agent_port
3 web 1 a 127.0.0.1 0 8 1 1 300 17 2 0 6 0 0 0 - 18090 - 0 0 - - 0
3 web 2 b 127.0.0.1 2 0 256 1 299 8 2 0 6 0 0 0 - 18091 - 0 0 - - 0
--
web,a,0,0,3,0,,0,0,0,,0,,0,0,0,0,DOWN,1,1,0,1,1,300,300,,1,3,1,,0,,2,0,,0,L7STS,404,2,0,0,0,0,0,0,0,,,0,0,0,,,,,-1,File not found,,0,0,0,0,,,,Layer7 wrong status,,1,2,0,,,,
web,b,0,0,7,0,,0,0,0,,0,,0,0,0,0,UP,1,1,0,0,0,16,0,,1,3,4,,0,,2,0,,0,L4OK,,0,0,0,0,0,0,0,,,,0,0,0,,,,,-1,,,0,0,0,0,,,,Layer4 check passed,,2,2,3,,,,
HA
printf 'web\nNo such server.\n' > "$corpus/haproxy_reply_fuzz/seed-error"

# --- agent_stream_fuzz: frames of [control][length LE16][AgentMessage].
frame() {  # frame CONTROL TEXTPROTO
  local bytes
  bytes=$(printf '%s' "$2" | encode AgentMessage hosting/v1/agent.proto | od -An -v -tx1 | tr -d ' \n')
  local len=$(( ${#bytes} / 2 ))
  printf '%b' "\\x$(printf %02x "$1")\\x$(printf %02x $((len & 255)))\\x$(printf %02x $((len >> 8)))"
  printf '%s' "$bytes" | sed 's/../\\x&/g' | xargs -0 printf '%b'
}
{
  frame 0 'register { node_id: "node-1" hostname: "m1" cpus: 2 agent_version: "0.1" }'
  frame 1 'register { node_id: "node-2" }'
  frame 0 'snapshot { tasks { task_id: "t1" service: "web" revision: 1 address: "10.0.0.5" probe_health: TASK_HEALTH_HEALTHY } tasks { task_id: "t2" service: "web" revision: 2 probe_health: TASK_HEALTH_STARTING } }'
  frame 1 'task { task_id: "t1" service: "web" revision: 1 probe_health: TASK_HEALTH_UNHEALTHY }'
  frame 0 'metrics { tasks { task_id: "t1" service: "web" revision: 1 requests_total: 100 errors_total: 2 latency_bucket_bounds: [0.01, 0.1, inf] latency_bucket_counts: [50, 90, 100] cpu_usage_ns: 1000000 memory_bytes: 1000 memory_limit_bytes: 4000 } }'
  frame 64 'heartbeat { time { seconds: 1700000000 } }'
  frame 0 'metrics { tasks { task_id: "t1" service: "web" revision: 1 requests_total: 250 errors_total: 3 latency_bucket_bounds: [0.01, 0.1, inf] latency_bucket_counts: [120, 200, 250] cpu_usage_ns: 3000000 } }'
  frame 0 'task { task_id: "t2" service: "web" revision: 2 probe_health: TASK_HEALTH_HEALTHY }'
  frame 192 'register { node_id: "node-1" }'
  frame 0 'result { command_id: "c1" ok: true output: "pulled" }'
} > "$corpus/agent_stream_fuzz/seed-two-agents"
echo "seeds written under $corpus"
